package fault

import (
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFaultPassThrough(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "echo", startUpstream(t, echo))
	c := dial(t, addr)
	msg := strings.Repeat("relia", 20000) // several chunks
	go c.Write([]byte(msg))
	if got := readN(t, c, len(msg)); got != msg {
		t.Fatalf("echo through the proxy changed the data")
	}
	// A half-close passes through: the echo ends and so does our read.
	c.CloseWrite()
	if rest, err := io.ReadAll(c); err != nil || len(rest) != 0 {
		t.Fatalf("after half-close: %q, %v", rest, err)
	}
}

func TestFaultLatencyWaitsOnTheClock(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"type":"latency","attributes":{"latency":1000}}`)
	c := dial(t, addr)
	c.Write([]byte("ping"))
	// The latency wait alone: a toxic added without lease_ttl has no lease.
	if w := nextWait(fc, 1); w != time.Second {
		t.Fatalf("latency wait = %v, want 1s", w)
	}
	fc.Advance(time.Second)
	if got := readN(t, c, 4); got != "ping" {
		t.Fatalf("got %q", got)
	}
}

// jitterDelays returns the delays a latency toxic with jitter draws for n
// messages on one connection.
func jitterDelays(t *testing.T, seed uint64, dist string, n int) []time.Duration {
	s, fc, _ := newTestServer(t, seed)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	attrs := `{"latency":100,"jitter":50,"distribution":"` + dist + `"}`
	if dist == "empirical" {
		attrs = `{"latency":100,"distribution":"empirical","samples":[1,2,3,5,8,13,21,34,55,89]}`
	}
	addToxic(t, s, "p", `{"type":"latency","attributes":`+attrs+`}`)
	c := dial(t, addr)
	var out []time.Duration
	for range n {
		c.Write([]byte("x"))
		w := nextWait(fc, 1)
		out = append(out, w)
		fc.Advance(w)
		readN(t, c, 1)
	}
	return out
}

func TestFaultLatencyJitterIsSeeded(t *testing.T) {
	t.Parallel()
	for _, dist := range []string{"uniform", "normal", "pareto", "empirical"} {
		t.Run(dist, func(t *testing.T) {
			t.Parallel()
			a := jitterDelays(t, 7, dist, 8)
			b := jitterDelays(t, 7, dist, 8)
			c := jitterDelays(t, 8, dist, 8)
			if !equalDurations(a, b) {
				t.Fatalf("same seed, different delays: %v vs %v", a, b)
			}
			if equalDurations(a, c) {
				t.Fatalf("different seeds, same delays: %v", a)
			}
			distinct := map[time.Duration]bool{}
			for _, d := range a {
				distinct[d] = true
				if dist == "uniform" && (d < 50*time.Millisecond || d > 150*time.Millisecond) {
					t.Fatalf("uniform delay %v outside 100±50ms", d)
				}
				if dist == "pareto" && (d < 100*time.Millisecond || d > 5100*time.Millisecond) {
					t.Fatalf("pareto delay %v outside [100ms, 100ms+100*50ms]", d)
				}
				if dist == "empirical" && !slices.Contains([]time.Duration{1, 2, 3, 5, 8, 13, 21, 34, 55, 89}, d/time.Millisecond-100) {
					t.Fatalf("empirical delay %v is not 100ms plus a sample", d)
				}
			}
			if len(distinct) < 2 {
				t.Fatalf("jitter drew one delay for all: %v", a)
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultLatencyDistributions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dist     string
		u1, u2   float64
		want     time.Duration
		wantNote string
	}{
		{"uniform", 0, 0, 50 * time.Millisecond, "lowest"},
		{"uniform", 0.5, 0, 100 * time.Millisecond, "middle"},
		{"normal", 1 - 1/2.718281828459045, 0, 170710678 * time.Nanosecond, "one sqrt(2) sigma"},
		{"pareto", 0, 0, 100 * time.Millisecond, "no tail"},
		{"pareto", 0.75, 0, 150 * time.Millisecond, "tail of one jitter"},
		{"pareto", 0.9999999, 0, 100*time.Millisecond + 100*50*time.Millisecond, "capped"},
		{"empirical", 0, 0, 101 * time.Millisecond, "first sample"},
		{"empirical", 0.5, 0, 100*time.Millisecond + 2500*time.Microsecond, "middle sample"},
		{"empirical", 0.99, 0, 140 * time.Millisecond, "last sample"},
	}
	for _, tt := range tests {
		lt := &LatencyToxic{Latency: 100, Jitter: 50, Distribution: tt.dist}
		if tt.dist == "empirical" {
			lt.Samples = []float64{1, 2, 2.5, 40}
		}
		got := lt.delay(tt.u1, tt.u2)
		if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("%s %s: delay = %v, want %v", tt.dist, tt.wantNote, got, tt.want)
		}
	}
	if d := (&LatencyToxic{Latency: 0, Jitter: 50, Distribution: "normal"}).delay(0.99, 0.5); d != 0 {
		t.Errorf("a negative draw must clamp to 0, got %v", d)
	}
}

func TestFaultBandwidthPacesByRate(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"type":"bandwidth","attributes":{"rate":1}}`) // 1 KB/s: 1 byte per ms
	c := dial(t, addr)
	msg := strings.Repeat("b", 250)
	c.Write([]byte(msg))
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, len(msg))
		io.ReadFull(c, buf)
		got <- string(buf)
	}()
	var waited time.Duration
	for waited < 250*time.Millisecond {
		w := nextWait(fc, 1)
		if w > 100*time.Millisecond {
			t.Fatalf("one wait of %v: bandwidth must send in pieces of at most 100ms", w)
		}
		fc.Advance(w)
		waited += w
	}
	if waited != 250*time.Millisecond {
		t.Fatalf("waited %v for 250 bytes at 1 KB/s, want 250ms", waited)
	}
	if g := <-got; g != msg {
		t.Fatalf("got %q", g)
	}
}

func TestFaultSlowCloseHoldsTheEnd(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, func(c net.Conn) { c.Write([]byte("bye")) }))
	addToxic(t, s, "p", `{"type":"slow_close","attributes":{"delay":2000}}`)
	c := dial(t, addr)
	if got := readN(t, c, 3); got != "bye" {
		t.Fatalf("got %q", got)
	}
	if w := nextWait(fc, 1); w != 2*time.Second {
		t.Fatalf("close waits %v, want 2s", w)
	}
	fc.Advance(2 * time.Second)
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("after the delay: %v, want EOF", err)
	}
}

func TestFaultTimeoutBlackHolesThenCloses(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	got := make(chan []byte, 1)
	addr := addProxy(t, s, "p", startUpstream(t, sink(got)))
	addToxic(t, s, "p", `{"type":"timeout","stream":"upstream","attributes":{"timeout":500}}`)
	c := dial(t, addr)
	c.Write([]byte("lost"))
	if w := nextWait(fc, 1); w != 500*time.Millisecond {
		t.Fatalf("timeout timer %v, want 500ms", w)
	}
	fc.Advance(500 * time.Millisecond)
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after the timeout")
	}
	// The link may end before it has dialed the upstream, and then the
	// upstream sees no connection at all: nothing reached it either way.
	select {
	case b := <-got:
		if len(b) != 0 {
			t.Fatalf("upstream received %q through a timeout toxic", b)
		}
	case <-time.After(2 * time.Second):
	}
}

func TestFaultTimeoutZeroHoldsUntilRemoved(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"name":"hole","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
	// What a connection sends into the hole is gone; its end still
	// passes, so the echo ends with nothing to return.
	a := dial(t, addr)
	a.Write([]byte("lost"))
	a.CloseWrite()
	if rest, err := io.ReadAll(a); err != nil || len(rest) != 0 {
		t.Fatalf("through the hole the echo returned %q, %v", rest, err)
	}
	// No timer closes the connection (and the toxic has no lease).
	b := dial(t, addr)
	if n := fc.Waiters(); n != 0 {
		t.Fatalf("%d timers pending, want none", n)
	}
	if err := s.RemoveToxic("p", "hole"); err != nil {
		t.Fatal(err)
	}
	// The connection outlived the toxic, and data flows again.
	b.Write([]byte("back"))
	if got := readN(t, b, 4); got != "back" {
		t.Fatalf("after the timeout toxic went: %q", got)
	}
}

func TestFaultResetPeerSendsRST(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"type":"reset_peer","attributes":{"timeout":200}}`)
	c := dial(t, addr)
	if w := nextWait(fc, 1); w != 200*time.Millisecond {
		t.Fatalf("reset timer %v, want 200ms", w)
	}
	fc.Advance(200 * time.Millisecond)
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset_peer: %v, want connection reset", err)
	}
}

func TestFaultSlicerPassesAllData(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"type":"slicer","attributes":{"average_size":7,"size_variation":3,"delay":0}}`)
	c := dial(t, addr)
	msg := strings.Repeat("0123456789", 100)
	c.Write([]byte(msg))
	if got := readN(t, c, len(msg)); got != msg {
		t.Fatalf("slicer changed the data")
	}
}

func TestFaultSlicerPieces(t *testing.T) {
	t.Parallel()
	s, fc, _ := newTestServer(t, 1)
	l := newLink(&proxyEntry{srv: s}, 0, nil)
	st := &toxicState{link: l, rng: newStream(1, 0, Upstream)}
	sl := &SlicerToxic{AverageSize: 10, Delay: 1000}
	var pieces []string
	done := make(chan error, 1)
	go func() {
		done <- sl.pipe(st, []byte(strings.Repeat("a", 35)), func(p []byte) error {
			pieces = append(pieces, string(p))
			return nil
		})
	}()
	for range 3 {
		if w := nextWait(fc, 1); w != time.Millisecond {
			t.Fatalf("slicer delay %v, want 1ms", w)
		}
		fc.Advance(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []int{10, 10, 10, 5}
	if len(pieces) != len(want) {
		t.Fatalf("pieces %q, want sizes %v", pieces, want)
	}
	for i, p := range pieces {
		if len(p) != want[i] {
			t.Fatalf("pieces %q, want sizes %v", pieces, want)
		}
	}
}

func TestFaultLimitDataCutsAfterBytes(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	got := make(chan []byte, 1)
	addr := addProxy(t, s, "p", startUpstream(t, sink(got)))
	addToxic(t, s, "p", `{"type":"limit_data","stream":"upstream","attributes":{"bytes":5}}`)
	c := dial(t, addr)
	c.Write([]byte("0123456789"))
	if b := <-got; string(b) != "01234" {
		t.Fatalf("upstream received %q, want the first 5 bytes", b)
	}
}

func TestFaultPartition(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	open := dial(t, addr)
	open.Write([]byte("before"))
	if got := readN(t, open, 6); got != "before" {
		t.Fatalf("got %q", got)
	}
	addToxic(t, s, "p", `{"type":"partition","stream":"upstream"}`)
	// A new connection is refused: closed before anything reaches upstream.
	refused := dial(t, addr)
	if _, err := refused.Read(make([]byte, 1)); err == nil {
		t.Fatal("a new connection got through a partition")
	}
	// The open one is black-holed: what it sends now never reaches the
	// echo, so the echo ends with nothing to send back.
	open.Write([]byte("during"))
	open.CloseWrite()
	if rest, err := io.ReadAll(open); err != nil || len(rest) != 0 {
		t.Fatalf("through a partition the echo returned %q, %v", rest, err)
	}
	if err := s.RemoveToxic("p", "partition_upstream"); err != nil {
		t.Fatal(err)
	}
	after := dial(t, addr)
	after.Write([]byte("after"))
	if got := readN(t, after, 5); got != "after" {
		t.Fatalf("after the partition got %q", got)
	}
}

func TestFaultToxicityZeroNeverActs(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"type":"latency","toxicity":0,"attributes":{"latency":3600000}}`)
	c := dial(t, addr)
	c.Write([]byte("fast"))
	// No clock advance: the hour of latency must not apply.
	if got := readN(t, c, 4); got != "fast" {
		t.Fatalf("got %q", got)
	}
}

// connPattern sends one byte on n connections, one after another, through
// a limit_data toxic of 0 bytes with the given toxicity, and returns which
// connections the toxic cut.
func connPattern(t *testing.T, seed uint64, toxicity string, n int) []bool {
	s, _, _ := newTestServer(t, seed)
	addr := addProxy(t, s, "p", startUpstream(t, echo))
	addToxic(t, s, "p", `{"type":"limit_data","toxicity":`+toxicity+`,"attributes":{"bytes":0}}`)
	out := make([]bool, n)
	for i := range out {
		c := dial(t, addr)
		c.Write([]byte("x"))
		_, err := c.Read(make([]byte, 1))
		out[i] = err != nil
		c.Close()
	}
	return out
}

func TestFaultToxicityIsPerConnectionAndSeeded(t *testing.T) {
	t.Parallel()
	a := connPattern(t, 42, "0.5", 40)
	b := connPattern(t, 42, "0.5", 40)
	if !equalBools(a, b) {
		t.Fatalf("same seed, different decisions:\n%v\n%v", a, b)
	}
	// The pattern is the one the seed's streams predict.
	key := streamKey(42, "p", "limit_data_downstream")
	cut := 0
	for i, got := range a {
		want := newStream(key, uint64(i), Downstream).Float64() < 0.5
		if got != want {
			t.Fatalf("connection %d: cut=%v, the seed predicts %v", i, got, want)
		}
		if got {
			cut++
		}
	}
	if cut == 0 || cut == len(a) {
		t.Fatalf("toxicity 0.5 cut %d of %d connections", cut, len(a))
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func equalBools(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestFaultToxicityDecisionsWithinBounds(t *testing.T) {
	t.Parallel()
	// 100,000 connections: the count of enabled ones is binomial; 5 sigma
	// bounds make a false failure practically impossible while a wrong
	// rate (off by a few tenths of a percent) fails.
	const n = 100000
	for _, p := range []float64{0.0001, 0.01, 0.3, 0.9} {
		key := streamKey(99, "proxy", "toxic")
		hits := 0
		for i := range uint64(n) {
			if newStream(key, i, Upstream).Float64() < p {
				hits++
			}
		}
		mean := p * n
		sigma := math.Sqrt(n * p * (1 - p))
		if d := float64(hits) - mean; d > 5*sigma+1 || d < -5*sigma-1 {
			t.Errorf("toxicity %v: %d of %d enabled, want %v±%.1f", p, hits, n, mean, 5*sigma)
		}
	}
}

func TestFaultChunkLoss(t *testing.T) {
	t.Parallel()
	// On real sockets: rate 1 loses everything.
	s, _, _ := newTestServer(t, 1)
	got := make(chan []byte, 1)
	addr := addProxy(t, s, "p", startUpstream(t, sink(got)))
	addToxic(t, s, "p", `{"type":"chunk_loss","stream":"upstream","attributes":{"rate":1}}`)
	c := dial(t, addr)
	c.Write([]byte("gone"))
	c.CloseWrite()
	if b := <-got; len(b) != 0 {
		t.Fatalf("upstream received %q through chunk_loss rate 1", b)
	}
	// Chunk by chunk (socket reads are not reproducible chunks, pipe
	// calls are): the losses follow the seed.
	pattern := func(seed uint64) []bool {
		st := &toxicState{rng: newStream(streamKey(seed, "p", "loss"), 0, Upstream)}
		out := make([]bool, 200)
		for i := range out {
			(&ChunkLossToxic{Rate: 0.3}).pipe(st, []byte("x"), func([]byte) error { out[i] = true; return nil })
		}
		return out
	}
	a, b := pattern(3), pattern(3)
	if !equalBools(a, b) || equalBools(a, pattern(4)) {
		t.Fatal("chunk losses do not follow the seed")
	}
	checkBinomial(t, countTrue(a), len(a), 0.7)
}
