package netyield

import (
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

var sink atomic.Int64

// spin is a slice of work that neither blocks nor yields.
func spin() {
	x := 0
	for i := range 500 {
		x += i * i
	}
	sink.Add(int64(x))
}

// TestYieldLetsThePollerWakeAReader: on one processor, goroutines that
// take turns through bursts with Yield let a goroutine whose socket
// became ready run after their first slices, not after their bursts (a round or two, as the poller's goroutine and
// the reader may be woken by different looks at the network).
// With runtime.Gosched between slices the reader woke only once every
// burst ended (or at the runtime monitor's poll, 10 ms on).
func TestYieldLetsThePollerWakeAReader(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r := &rounds{} // a zero quantum: every yield waits for a round
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const bursts, slices = 4, 2000
	var left atomic.Int64 // slices not yet done
	left.Store(bursts * slices)
	leftAtWake := make(chan int64, 1)
	go func() {
		s.Read(make([]byte, 1))
		leftAtWake <- left.Load()
	}()
	runtime.Gosched() // the reader parks on the poller
	var wg sync.WaitGroup
	for range bursts {
		wg.Go(func() {
			for range slices {
				spin()
				left.Add(-1)
				r.yield()
			}
		})
	}
	c.Write([]byte{1}) // before any burst runs: this goroutine goes on until wg.Wait
	wg.Wait()
	got := <-leftAtWake
	if done := bursts*slices - got; done > 4*bursts {
		t.Errorf("the reader woke after %d of the bursts' %d slices; want it within their first four rounds (%d)", done, bursts*slices, 4*bursts)
	}
}

// TestYieldWithinTheQuantumDoesNotWait: yields closer together than the
// quantum ask for no round.
func TestYieldWithinTheQuantumDoesNotWait(t *testing.T) {
	r := &rounds{quantum: 1 << 62}
	r.lastRound.Store(1 << 62)
	for range 100 {
		r.yield()
	}
	if r.asked || r.next != nil {
		t.Errorf("a yield within the quantum asked for a round")
	}
}
