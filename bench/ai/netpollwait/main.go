// Command netpollwait shows how long a goroutine parked on a socket
// waits, once its bytes arrived, while other goroutines do short slices
// of work with a yield between them (runtime.Gosched), as the AI
// gateway's streams do between the chunks of a burst: with one
// processor, Go's scheduler polls the network only when nothing is
// runnable (or every 10 ms from its monitor), so the wait lasts until
// the bursts end. docs/benchmarks.md ("AI gateway vs Portkey") reads it
// beside bench/ai's time to first token. With -netyield the slices yield
// with internal/netyield, as the AI gateway's streams now do.
//
//	cd bench && taskset -c 1 go run ./ai/netpollwait -procs 1
//	cd bench && taskset -c 1 go run ./ai/netpollwait -procs 2
//	cd bench && taskset -c 1 go run ./ai/netpollwait -procs 1 -netyield
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/relia-dev/relia/internal/netyield"
)

var sink int

// work is a slice of about 2 µs of work.
func work() {
	x := 0
	for i := range 2000 {
		x += i * i
	}
	sink += x
}

func main() {
	procs := flag.Int("procs", 1, "GOMAXPROCS")
	bursts := flag.Int("bursts", 8, "goroutines that work in slices with a yield between")
	slices := flag.Int("slices", 300, "slices of work of each burst")
	rounds := flag.Int("rounds", 3, "rounds")
	useNetyield := flag.Bool("netyield", false, "yield with netyield.Yield instead of runtime.Gosched")
	flag.Parse()
	yield := runtime.Gosched
	if *useNetyield {
		yield = netyield.Yield
	}
	runtime.GOMAXPROCS(*procs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer ln.Close()
	for range *rounds {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		s, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		woke := make(chan time.Time, 1)
		go func() {
			s.Read(make([]byte, 1))
			woke <- time.Now()
		}()
		time.Sleep(10 * time.Millisecond) // the reader parks on the poller
		var wg sync.WaitGroup
		var mu sync.Mutex
		var end time.Time
		for range *bursts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range *slices {
					work()
					yield()
				}
				mu.Lock()
				end = time.Now()
				mu.Unlock()
			}()
		}
		runtime.Gosched() // the bursts start
		sent := time.Now()
		c.Write([]byte{1})
		wg.Wait()
		at := <-woke
		fmt.Printf("GOMAXPROCS=%d, netyield %v: the reader woke %v after its byte was written; the bursts ended %v after it\n",
			*procs, *useNetyield, at.Sub(sent).Round(time.Microsecond), end.Sub(sent).Round(time.Microsecond))
		c.Close()
		s.Close()
	}
}
