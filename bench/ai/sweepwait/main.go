// Command sweepwait shows how long requests to a Go server on one
// processor wait while the runtime sweeps its heap after a collection,
// with and without internal/netyield's PollDuringSweeps, which gives the
// network poller a round every 100 µs of the sweep (the runtime's
// background sweeper otherwise keeps it waiting: golang/go#56060).
//
// The server runs on CPU 1 with GOMAXPROCS=1 and relia's collector
// floor (internal/gcfloor, as relia gateway and relia ai serve run), and
// allocates about 9 KB in small pieces a request, as relia does an AI
// stream; a client on CPU 0 sends a request every -every and times each
// round trip. Each round runs the server without and with the pump, in
// alternating order. docs/benchmarks.md reads it beside bench/ai's time
// to first token.
//
//	cd bench && go run ./ai/sweepwait -rounds 4 -duration 5s
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/gcfloor"
	"github.com/relia-dev/relia/internal/netyield"
)

func main() {
	role := flag.String("role", "", "(internal) serve or client")
	pump := flag.Bool("pump", false, "(serve) give the poller rounds during sweeps")
	addr := flag.String("addr", "", "(client) the server's address")
	rounds := flag.Int("rounds", 4, "rounds; each runs the server without and with the pump")
	d := flag.Duration("duration", 5*time.Second, "length of each run")
	every := flag.Duration("every", 330*time.Microsecond, "time between two requests (330 µs: about 3,000 a second)")
	perRequest := flag.Int("alloc", 9<<10, "bytes the server allocates a request")
	work := flag.Duration("work", 100*time.Microsecond, "CPU the server spends a request besides reading, writing and allocating (100 µs at 3,000 a second keeps its core about 60% busy, as relia's is at half its max stream rate)")
	flag.Parse()
	var err error
	switch *role {
	case "serve":
		err = serve(*pump, *perRequest, *work)
	case "client":
		err = client(*addr, *d, *every)
	default:
		err = compare(*rounds, *d, *every, *perRequest, *work)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweepwait:", err)
		os.Exit(1)
	}
}

// compare runs the rounds and prints each run's round trips.
func compare(rounds int, d, every time.Duration, perRequest int, work time.Duration) error {
	if _, err := exec.LookPath("taskset"); err != nil {
		return fmt.Errorf("taskset is required: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("server on CPU 1 (GOMAXPROCS=1, collector floor %d MiB, %d bytes allocated and %v of CPU a request), client on CPU 0, a request every %v, %v a run\n", gcfloor.Floor>>20, perRequest, work, every, d)
	fmt.Println("pump | round trips | p50 | p99 | p99.9 | max | over 1 ms | collections")
	over, p999, worst := map[bool][]float64{}, map[bool][]float64{}, map[bool][]float64{}
	for r := range rounds {
		for _, pump := range []bool{r%2 == 1, r%2 == 0} {
			line, err := run(self, pump, d, every, perRequest, work)
			if err != nil {
				return err
			}
			// count | p50 | p99 | p99.9 | max | over 1 ms | collections
			f := strings.Split(line, " | ")
			num := func(i int) float64 { v, _ := strconv.ParseFloat(f[i], 64); return v }
			p999[pump], worst[pump], over[pump] = append(p999[pump], num(3)), append(worst[pump], num(4)), append(over[pump], num(5))
			fmt.Printf("%-4v | %s\n", pump, line)
		}
	}
	for _, m := range []struct {
		name   string
		v      map[bool][]float64
		format string
	}{{"p99.9", p999, "%.3f ms"}, {"max", worst, "%.3f ms"}, {"round trips over 1 ms", over, "%.0f"}} {
		off, on := median(m.v[false]), median(m.v[true])
		fmt.Printf("%s, median of %d runs: "+m.format+" without the pump, "+m.format+" with it (%.2fx)\n", m.name, rounds, off, on, on/max(off, 1e-9))
	}
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// run starts a server and a client, and returns the client's line with
// the server's collections added.
func run(self string, pump bool, d, every time.Duration, perRequest int, work time.Duration) (string, error) {
	srv := exec.Command("taskset", "-c", "1", self, "-role", "serve", "-pump="+strconv.FormatBool(pump), "-alloc", strconv.Itoa(perRequest), "-work", work.String())
	srv.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=")
	out, err := srv.StdoutPipe()
	if err != nil {
		return "", err
	}
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return "", err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	sc := bufio.NewScanner(out)
	if !sc.Scan() {
		return "", fmt.Errorf("the server said nothing")
	}
	addr := sc.Text()
	cl := exec.Command("taskset", "-c", "0", self, "-role", "client", "-addr", addr, "-duration", d.String(), "-every", every.String())
	cl.Stderr = os.Stderr
	b, err := cl.Output()
	if err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	// The server's collections, from its answer to a last request.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.Write([]byte("G"))
	gcs := make([]byte, 32)
	k, _ := c.Read(gcs)
	return strings.TrimSpace(string(b)) + " | " + strings.TrimSpace(string(gcs[:k])), nil
}

// serve answers each byte with one, after allocating perRequest bytes in
// pieces of 256 and spending work of CPU; "G" is answered with the count
// of collections.
func serve(pump bool, perRequest int, work time.Duration) error {
	defer gcfloor.Keep(gcfloor.Floor)()
	if pump {
		defer netyield.PollDuringSweeps()()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			b := make([]byte, 64)
			// The last 64 pieces the connection's requests allocated,
			// kept so that the allocations stay.
			keep, kept := make([][]byte, 64), 0
			for {
				n, err := c.Read(b)
				if err != nil {
					return
				}
				if b[0] == 'G' {
					s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
					metrics.Read(s)
					c.Write([]byte(strconv.FormatUint(s[0].Value.Uint64(), 10)))
					continue
				}
				for range perRequest / 256 {
					keep[kept%len(keep)] = make([]byte, 256)
					kept++
				}
				for t := time.Now(); time.Since(t) < work; {
				}
				c.Write(b[:n])
			}
		}()
	}
}

// client sends one byte every interval for d, open loop, over conns
// connections in turn (a request goes when it is due, whatever the
// answers before it), and prints the round trips: their count, p50,
// p99, p99.9 and max in ms, and how many took over 1 ms.
func client(addr string, d, every time.Duration) error {
	const conns = 64
	runtime.GOMAXPROCS(1)
	var cs [conns]net.Conn
	var sent [conns]chan time.Time
	for i := range cs {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		cs[i], sent[i] = c, make(chan time.Time, 1024)
	}
	n := int(d / every)
	lat := make(chan time.Duration, n)
	for i := range cs {
		go func() {
			b := make([]byte, 64)
			for t := range sent[i] {
				if _, err := cs[i].Read(b[:1]); err != nil {
					return
				}
				lat <- time.Since(t)
			}
		}()
	}
	start := time.Now()
	b := []byte{1}
	for k := range n {
		due := start.Add(time.Duration(k) * every)
		if w := time.Until(due); w > 0 {
			time.Sleep(w)
		}
		i := k % conns
		sent[i] <- due // timed from when it was due: a late send is the client's, counted whole
		if _, err := cs[i].Write(b); err != nil {
			return err
		}
	}
	all := make([]time.Duration, 0, n)
	for range n {
		all = append(all, <-lat)
	}
	slices.Sort(all)
	q := func(p float64) float64 {
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	over := 0
	for _, l := range all {
		if l > time.Millisecond {
			over++
		}
	}
	fmt.Printf("%d | %.3f | %.3f | %.3f | %.3f | %d\n", len(all), q(0.5), q(0.99), q(0.999), float64(all[len(all)-1].Microseconds())/1000, over)
	return nil
}
