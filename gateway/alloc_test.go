package gateway

import (
	"io"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
)

// fastBackend is an upstream on the fasthttp engine, which answers
// without allocating, so allocation counts measure the gateway alone.
func fastBackend(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("ok\n")
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }, NoDefaultDate: true, NoDefaultServerHeader: true}
	go srv.Serve(ln) // ends when the listener closes
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// proxyBench builds the gateway of the benchmark harness (bench/gateway):
// metrics, the JSON access log, a breaker per target and a retry budget on
// the route, and returns a function that proxies one GET through its
// handler.
func proxyBench(t testing.TB, extra string) func() int {
	addr := fastBackend(t)
	cfg, err := Parse("alloc.yaml", []byte(`kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:0"}]
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
	g, err := New(cfg, Options{Registry: prometheus.NewRegistry(), AccessLog: io.Discard, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.closeAccessLog)
	var req fasthttp.Request
	req.SetRequestURI("/items/42?x=1")
	req.Header.SetHost("shop.test")
	req.Header.Set("User-Agent", "alloc-test")
	raddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, raddr, nil) // allocates; a server does it once per connection
	return func() int {
		req.CopyTo(&ctx.Request)
		ctx.Response.Reset()
		g.serve(&ctx)
		ctx.Response.CloseBodyStream()
		return ctx.Response.StatusCode()
	}
}

func TestProxyDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	do := proxyBench(t, "")
	for range 200 { // warm pools, connections and label children
		if s := do(); s != 200 {
			t.Fatalf("status %d", s)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { do() }); n > 0 {
		t.Errorf("a proxied request allocates %v times", n)
	}
}

func BenchmarkProxy(b *testing.B) {
	do := proxyBench(b, "")
	b.ReportAllocs()
	for b.Loop() {
		do()
	}
}
