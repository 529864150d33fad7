package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startGateway starts a gateway from a YAML spec body (the part under
// spec:, with listeners and admin on port 0 added unless present) and
// stops it at the end of the test.
func startGateway(t testing.TB, spec string, o Options) (*Gateway, string) {
	t.Helper()
	return startGatewayThen(t, spec, o, nil)
}

// startGatewayThen is startGateway that hands the gateway to before,
// when set, before it starts.
func startGatewayThen(t testing.TB, spec string, o Options, before func(*Gateway)) (*Gateway, string) {
	t.Helper()
	doc := "kind: Gateway\nversion: relia/v1\nspec:\n"
	if !strings.Contains(spec, "listeners:") {
		doc += "  listeners:\n    - name: main\n      address: 127.0.0.1:0\n"
		if e := subtestEngine(t); e != "" {
			doc += "      engine: " + e + "\n"
		}
	}
	// Never the default admin port: two gateways (two tests, or a test and
	// a user's gateway) would clash on it.
	if !regexp.MustCompile(`(?m)^  admin:`).MatchString(spec) {
		doc += "  admin:\n    address: 127.0.0.1:0\n"
	}
	doc += spec
	cfg, err := Parse("test.yaml", []byte(doc))
	if err != nil {
		t.Fatalf("parsing config: %v\n%s", err, doc)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.AccessLog == nil {
		o.AccessLog = io.Discard
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	g, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(g)
	}
	if err := g.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Shutdown(ctx)
	})
	return g, "http://" + g.Addr(cfg.Spec.Listeners[0].Name)
}

// engines are the listener engines this platform has.
func engines() []string {
	if eventLoopSupported {
		return []string{EngineGoroutines, EngineEventLoop}
	}
	return []string{EngineGoroutines}
}

// onEngines runs test once per engine, as subtests named after them;
// startGateway serves a subtest's listener on its engine.
func onEngines(t *testing.T, test func(t *testing.T)) {
	for _, e := range engines() {
		t.Run(e, test)
	}
}

// subtestEngine is the engine onEngines runs t on; empty outside it.
func subtestEngine(t testing.TB) string {
	for _, part := range strings.Split(t.Name(), "/") {
		if part == EngineGoroutines || part == EngineEventLoop {
			return part
		}
	}
	return ""
}

// Listeners that name no engine run on the default (auto: the event loop
// for plain HTTP/1.1 listeners on Linux); RELIA_TEST_ENGINE=goroutines
// runs the package's tests with goroutines serving them instead.
func init() {
	if e := os.Getenv("RELIA_TEST_ENGINE"); e != "" {
		defaultEngine = e
	}
	// A slice into a read buffer a connection let go of shows 0xAB in
	// every test (spareReadBufs).
	spareReadBufs.poison = true
}

// backend is an upstream that answers with its name and counts requests.
type backend struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	hits int
	last *http.Request
	fn   func(w http.ResponseWriter, r *http.Request) bool // true: handled
}

func newBackend(t testing.TB, name string) *backend {
	b := &backend{name: name}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.hits++
		b.last = r.Clone(context.Background())
		fn := b.fn
		b.mu.Unlock()
		if fn != nil && fn(w, r) {
			return
		}
		w.Header().Set("X-Backend", name)
		fmt.Fprint(w, name)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) addr() string { return strings.TrimPrefix(b.URL, "http://") }

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.hits
}

func (b *backend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

func (b *backend) handle(fn func(w http.ResponseWriter, r *http.Request) bool) {
	b.mu.Lock()
	b.fn = fn
	b.mu.Unlock()
}

// get sends a request and returns status, body and headers.
func get(t testing.TB, method, url string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	io.Copy(&buf, resp.Body)
	return resp.StatusCode, buf.String(), resp.Header
}

var testClient = &http.Client{Timeout: 10 * time.Second}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// rawExchange writes raw, a request as bytes, on a new connection to the
// gateway at base and reads one response, body included.
func rawExchange(t testing.TB, base, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, raw)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// dialFor connects to addr for the rest of t, with a deadline that ends
// a test that fails instead of letting it hang.
func dialFor(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c, bufio.NewReader(c)
}
