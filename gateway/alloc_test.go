package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/clock"
)

// rawBackendOK is an upstream that answers every request with the same
// bytes without parsing more than the end of its head, so that
// allocation counts measure the gateway alone.
func rawBackendOK(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	reply := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
	go func() { // ends when the listener closes
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						i := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						have = copy(buf, buf[i+4:have])
						if _, err := c.Write(reply); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// proxyBench starts the gateway of the benchmark harness (bench/gateway):
// metrics, the JSON access log, a breaker per target and a retry budget on
// the route; it returns a function that sends one GET through it on a
// kept-alive connection and reads the answer, allocating nothing itself.
func proxyBench(t testing.TB, extra string) func() int {
	_, do := proxyBenchGateway(t, extra)
	return do
}

// proxyBenchGateway is proxyBench that also returns the gateway.
func proxyBenchGateway(t testing.TB, extra string) (*Gateway, func() int) {
	return proxyBenchGatewayOn(t, extra, nil)
}

// proxyBenchGatewayOn is proxyBenchGateway on the clock clk (nil: the
// real one).
func proxyBenchGatewayOn(t testing.TB, extra string, clk clock.Clock) (*Gateway, func() int) {
	addr := rawBackendOK(t)
	cfg, err := Parse("alloc.yaml", []byte(`kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: "127.0.0.1:0", engine: "`+subtestEngine(t)+`"}]
  admin: {address: "off"}
  upstreams: [{name: b, targets: [{address: "`+addr+`"}]}]
  routes:
    - name: r
      upstream: b
      retry: {attempts: 2}
`+extra))
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{Registry: prometheus.NewRegistry(), AccessLog: io.Discard, Logger: quietLogger(), Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Shutdown(canceled()) })
	c, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	req := []byte("GET /items/42?x=1 HTTP/1.1\r\nHost: shop.test\r\nUser-Agent: alloc-test\r\n\r\n")
	buf := make([]byte, 4096)
	return g, func() int {
		if _, err := c.Write(req); err != nil {
			return 0
		}
		have := 0
		for {
			n, err := c.Read(buf[have:])
			if err != nil {
				return 0
			}
			have += n
			if i := bytes.Index(buf[:have], []byte("\r\n\r\n")); i >= 0 && have >= i+4+3 {
				break
			}
		}
		if !bytes.HasPrefix(buf, []byte("HTTP/1.1 200 ")) {
			return 1
		}
		return 200
	}
}

func TestProxyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	onEngines(t, func(t *testing.T) {
		do := proxyBench(t, "")
		for range 200 { // warm pools, connections and label children
			if s := do(); s != 200 {
				t.Fatalf("status %d", s)
			}
		}
		if n := testing.AllocsPerRun(1000, func() { do() }); n > 0 {
			t.Errorf("a proxied request allocates %v times", n)
		}
	})
}

// readCounter is the real clock, counting reads.
type readCounter struct {
	clock.Clock
	reads atomic.Int64
}

func (c *readCounter) Now() time.Time {
	c.reads.Add(1)
	return c.Clock.Now()
}

func (c *readCounter) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// A proxied request of the benchmark's config (metrics, access log, a
// breaker, a retry budget) reads the gateway's clock twice, for its start
// and its end. The breaker, whose observer counts events only, and the
// retry budget, which takes the request's start, read it not at all
// (they read it three times a request before).
func TestProxyClockReads(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		rc := &readCounter{Clock: clock.Real()}
		_, do := proxyBenchGatewayOn(t, "", rc)
		for range 100 {
			if s := do(); s != 200 {
				t.Fatalf("status %d", s)
			}
		}
		const n = 2000
		before := rc.reads.Load()
		for range n {
			do()
		}
		// Timers of the gateway's own (health, flushes) read the clock
		// too, a few times in the whole run.
		per := float64(rc.reads.Load()-before) / n
		t.Logf("%.3f clock reads a request", per)
		if per > 2.05 {
			t.Errorf("%.2f clock reads a request, want 2", per)
		}
	})
}

func BenchmarkProxy(b *testing.B) {
	do := proxyBench(b, "")
	b.ReportAllocs()
	for b.Loop() {
		do()
	}
}

// canceled returns a context that has ended: Shutdown with it ends what is
// open at once.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestProxyWithCallStoreDoesNotAllocate is TestProxyDoesNotAllocate with
// every call kept: the call record is built in the pooled exchange and
// framed into the writer's batch buffer, so a proxied request still
// allocates nothing (the batch is written at the end, outside the
// measurement).
func TestProxyWithCallStoreDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	db := filepath.Join(t.TempDir(), "calls.db")
	do := proxyBench(t, "  calls: {store: "+db+", batchSize: 100000, flushInterval: 1h}\n")
	for range 200 {
		if s := do(); s != 200 {
			t.Fatalf("status %d", s)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { do() }); n > 0 {
		t.Errorf("a proxied request with the call store on allocates %v times", n)
	}
}
