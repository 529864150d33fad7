package gateway

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The tests in this file send what an attacker would, as raw bytes on
// loopback, and check that the edge holds (docs/gateway.md, "What the
// edge refuses").

// exchangeOn writes raw on c and reads one response, body included.
func exchangeOn(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// TestUpgradeOpensNoTunnelPastRouting asks for a WebSocket on a route
// that does not allow upgrades, and on one that does but whose target
// answers 200: either way the connection stays HTTP, and the next request
// on it is routed (here to no route: 404), checked and logged, never
// passed raw to the target.
func TestUpgradeOpensNoTunnelPastRouting(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, "b") // answers 200 to everything, upgrades included
		for _, route := range []string{
			"{name: ws, upstream: b, match: {path: {prefix: /ws}}}",
			"{name: ws, upstream: b, match: {path: {prefix: /ws}}, upgrades: [websocket]}",
		} {
			t.Run(route, func(t *testing.T) {
				log := &syncBuffer{}
				g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [%s]
`, b.addr(), route), Options{AccessLog: log})
				c, err := net.Dial("tcp", g.Addr("main"))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				resp, _ := exchangeOn(t, c, br, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
				if resp.StatusCode != 200 {
					t.Fatalf("upgrade answered %d, want the target's 200", resp.StatusCode)
				}
				before := b.count()
				resp, body := exchangeOn(t, c, br, "DELETE /admin/users/1 HTTP/1.1\r\nHost: x\r\n\r\n")
				if resp.StatusCode != 404 || !strings.Contains(body, `"reason":"no_route"`) {
					t.Fatalf("the next request on the connection: %d %s, want 404 no_route", resp.StatusCode, body)
				}
				if b.count() != before {
					t.Error("the request after a refused upgrade reached the target")
				}
				g.Shutdown(canceled())
				if n := strings.Count(log.String(), `"msg":"request"`); n != 2 {
					t.Errorf("the access log has %d lines for two requests:\n%s", n, log.String())
				}
			})
		}
	})
}

// TestAnnouncedBodiesCostNothingUntilTheyArrive opens connections that
// each announce a 10 MB body and send none: the gateway's heap grows by
// what the connections cost, not by what they announce, and a normal
// request is served meanwhile. A route whose limit the announced length
// exceeds answers 413 at once. (bench/gateway/edge holds 1,000 such
// connections against a gateway process and checks its RSS stays under
// 100 MB and a normal request's p99 under 10 ms; a test cannot time that
// on a shared machine.)
func TestAnnouncedBodiesCostNothingUntilTheyArrive(t *testing.T) {
	onEngines(t, func(t *testing.T) {
		b := newBackend(t, "b")
		g, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes:
    - {name: small, upstream: b, match: {path: {prefix: /small}}, maxBodySize: 1KB}
    - {name: r, upstream: b}
`, b.addr()), Options{})
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		const n = 200
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range n {
			c, err := net.Dial("tcp", g.Addr("main"))
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
		}
		// A normal request is served while they wait.
		if status, body, _ := get(t, "GET", base+"/", nil); status != 200 || body != "b" {
			t.Fatalf("a normal request while %d bodies are announced: %d %q", n, status, body)
		}
		time.Sleep(200 * time.Millisecond) // let the last heads be read
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		grew := int64(after.HeapInuse) - int64(before.HeapInuse)
		if limit := int64(n * 64 << 10); grew > limit {
			t.Errorf("the heap grew by %d KiB for %d connections that sent only heads, over %d KiB", grew>>10, n, limit>>10)
		}
		t.Logf("heap grew by %d KiB for %d connections (%d bytes each)", grew>>10, n, grew/n)

		// An announced length over the route's limit: 413 before a byte of
		// the body is sent.
		c, err := net.Dial("tcp", g.Addr("main"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		resp, body := exchangeOn(t, c, bufio.NewReader(c), "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
		if resp.StatusCode != 413 || !strings.Contains(body, `"reason":"body_too_large"`) {
			t.Errorf("a body announced over the route's limit: %d %s, want 413 body_too_large", resp.StatusCode, body)
		}
	})
}

// TestMalformedHeadsAreRefusedAtOnce sends heads that two servers could
// read two ways (RFC 9112, 5.1, 5.2, 7.1): each gets 400 and the
// connection closes, at once (the head timeout is the default 10s, and
// the test's deadline is far shorter), and nothing reaches the target.
func TestMalformedHeadsAreRefusedAtOnce(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, "b")
		g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})
		for _, tc := range []struct{ name, raw, reason string }{
			{"obs-fold", "POST /x HTTP/1.1\r\nHost: x\r\nX-Foo: bar\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", ReasonInvalidHeader},
			{"space inside a name", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", ReasonInvalidHeader},
			{"no colon", "GET /x HTTP/1.1\r\nHost: x\r\nX-No-Colon\r\n\r\n", ReasonInvalidHeader},
			{"chunk size 0x5", "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", ReasonInvalidBody},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := b.count()
				c, err := net.Dial("tcp", g.Addr("main"))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Second))
				br := bufio.NewReader(c)
				resp, body := exchangeOn(t, c, br, tc.raw)
				if resp.StatusCode != 400 || !strings.Contains(body, `"reason":"`+tc.reason+`"`) {
					t.Errorf("%d %s, want 400 %s", resp.StatusCode, body, tc.reason)
				}
				if !resp.Close {
					t.Error("the connection is kept open; where the next request starts is in doubt")
				}
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("after the 400 the connection gave %v, want its end", err)
				}
				if b.count() != before {
					t.Error("a malformed request reached the target")
				}
			})
		}
	})
}

// TestUserinfoNeverBecomesCredentials sends an absolute-form target with
// userinfo on a route that strips Authorization: it is refused, and the
// target sees nothing.
func TestUserinfoNeverBecomesCredentials(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, "b")
		_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: strip, upstream: b, match: {path: {prefix: /strip}}, requestHeaders: {remove: [Authorization]}}]
`, b.addr()), Options{})
		resp, body := rawExchange(t, base, "GET http://admin:hunter2@host/strip/b HTTP/1.1\r\nHost: host\r\n\r\n")
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"reason":"invalid_target"`) {
			t.Errorf("userinfo in the target: %d %s, want 400 invalid_target", resp.StatusCode, body)
		}
		if b.count() != 0 {
			t.Errorf("the target got the request, Authorization %q", b.lastRequest().Header.Get("Authorization"))
		}
	})
}

// h2cClient is a raw HTTP/2 client over prior knowledge, frame by frame.
type h2cClient struct {
	c   net.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func dialH2C(t *testing.T, addr string) *h2cClient {
	t.Helper()
	c, _ := dialFor(t, addr)
	h := &h2cClient{c: c, fr: http2.NewFramer(c, c)}
	h.enc = hpack.NewEncoder(&h.buf)
	io.WriteString(c, http2.ClientPreface)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// request sends a GET on stream id, its headers ending the stream.
func (h *h2cClient) request(id uint32, path string) error {
	h.buf.Reset()
	for _, kv := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", path}} {
		h.enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
	}
	return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(), EndStream: true, EndHeaders: true})
}

// TestHTTP2RapidResetIsBounded sends HEADERS and RST_STREAM pairs as fast
// as it can on one h2c connection (CVE-2023-44487): the gateway answers
// GOAWAY with ENHANCE_YOUR_CALM and closes the connection, and the target
// sees only a fraction of the requests.
func TestHTTP2RapidResetIsBounded(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	reg := prometheus.NewRegistry()
	g, _ := startGateway(t, fmt.Sprintf(`
  listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{Registry: reg})
	h := dialH2C(t, g.Addr("main"))
	const pairs = 5000
	var sent atomic.Int64
	go func() { // writes until the gateway closes the connection
		for id := uint32(1); sent.Load() < pairs; id += 2 {
			if h.request(id, "/reset") != nil || h.fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
				return
			}
			sent.Add(1)
		}
	}()
	var goAway *http2.GoAwayFrame
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			break
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			goAway = ga
		}
	}
	if goAway == nil || goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("no GOAWAY ENHANCE_YOUR_CALM before the connection ended (got %v)", goAway)
	}
	if got := b.count(); got > h2ResetBurst+100 {
		t.Errorf("the target got %d requests of streams reset at once", got)
	}
	// Counted once the server has let the connection go, which the client
	// may see first.
	for deadline := time.Now().Add(10 * time.Second); rejections(t, reg, ReasonTooManyResets) < 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if got := rejections(t, reg, ReasonTooManyResets); got != 1 {
		t.Errorf("relia_rejections_total{reason=%q} = %v, want 1", ReasonTooManyResets, got)
	}
	t.Logf("GOAWAY after %d pairs sent; the target got %d requests", sent.Load(), b.count())
}

// TestHTTP2ResetStopsTheUpstreamRequest resets a stream whose request
// waits on its target: the gateway's upstream request ends with it.
func TestHTTP2ResetStopsTheUpstreamRequest(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	arrived, cancelled := make(chan struct{}), make(chan struct{})
	b.handle(func(w http.ResponseWriter, r *http.Request) bool {
		close(arrived)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
		return true
	})
	g, _ := startGateway(t, fmt.Sprintf(`
  listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b, timeout: 30s}]
`, b.addr()), Options{})
	h := dialH2C(t, g.Addr("main"))
	if err := h.request(1, "/slow"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not reach the target")
	}
	if err := h.fr.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second): // a hang, not a slow run: the target waits 10s
		t.Fatal("the target's request goes on after the client reset its stream")
	}
}

// TestHTTPLayerRefusalsExplainThemselves checks that what the HTTP layer
// refuses is answered like every other rejection: a JSON body with its
// reason, a line in the access log, a count in relia_rejections_total.
func TestHTTPLayerRefusalsExplainThemselves(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, "b")
		log := &syncBuffer{}
		reg := prometheus.NewRegistry()
		g, base := startGateway(t, fmt.Sprintf(`
  server: {readHeaderTimeout: 300ms, maxHeaderBytes: 4KiB}
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b, maxBodySize: 8B}]
`, b.addr()), Options{AccessLog: log, Registry: reg})
		for _, tc := range []struct {
			name, raw string
			status    int
			reason    string
		}{
			{"malformed", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, ReasonInvalidHeader},
			{"slow head", "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", 408, ReasonRequestTimeout},
			{"large body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n123456789", 413, ReasonBodyTooLarge},
			{"large chunked body", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n123456789\r\n0\r\n\r\n", 413, ReasonBodyTooLarge},
			{"large head", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 431, ReasonHeadTooLarge},
			{"version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, ReasonUnsupportedVersion},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := rawExchange(t, base, tc.raw)
				if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"reason":"`+tc.reason+`"`) {
					t.Errorf("%d %s %s, want %d with a JSON body naming %s", resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.reason)
				}
				if got := rejections(t, reg, tc.reason); got < 1 {
					t.Errorf("relia_rejections_total{reason=%q} = %v", tc.reason, got)
				}
			})
		}
		g.Shutdown(canceled())
		for _, tc := range []string{ReasonInvalidHeader, ReasonRequestTimeout, ReasonBodyTooLarge, ReasonHeadTooLarge, ReasonUnsupportedVersion} {
			if !strings.Contains(log.String(), `"reason":"`+tc+`"`) {
				t.Errorf("no access log line with reason %s:\n%s", tc, log.String())
			}
		}
		if b.count() != 0 {
			t.Errorf("the target got %d refused requests", b.count())
		}
	})
}

// rejections sums relia_rejections_total for reason.
func rejections(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "relia_rejections_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// TestAdminRefusesBrowserWrites sends POST /reload as a page of another
// site would have a browser send it to the loopback admin API: refused;
// the same from curl (no Origin) or from the admin's own origin goes
// through.
func TestAdminRefusesBrowserWrites(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	g, _ := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})
	base := "http://" + g.AdminAddr()
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"cross-site origin", map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site fetch", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"same-site fetch", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"no origin (curl)", nil, 400}, // passes the check; the gateway was not started from a file
		{"same origin", map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, 400},
	} {
		status, body, _ := get(t, "POST", base+"/reload", tc.hdr)
		if status != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.status)
		}
		if tc.status == 403 && !strings.Contains(body, `"reason": "cross_origin"`) {
			t.Errorf("%s: body %s", tc.name, body)
		}
	}
	if status, _, _ := get(t, "GET", base+"/upstreams", map[string]string{"Origin": "https://evil.example"}); status != 200 {
		t.Errorf("a read from a page: %d, want 200 (reads change nothing)", status)
	}
}

// TestH2CUpgradeStaysWithTheGateway sends what curl --http2 sends on a
// plain connection, Upgrade: h2c, to an h2c listener, then a second
// request on the same connection: the gateway serves both as HTTP/1.1
// (switching is its own decision, and it declines), the target never
// sees an Upgrade, and the second request is routed like any other.
func TestH2CUpgradeStaysWithTheGateway(t *testing.T) {
	t.Parallel()
	b := newBackend(t, "b")
	g, _ := startGateway(t, fmt.Sprintf(`
  listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b, match: {path: {prefix: /api}}}]
`, b.addr()), Options{})
	c, err := net.Dial("tcp", g.Addr("main"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, body := exchangeOn(t, c, br, "GET /api/a HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
	if resp.StatusCode != 200 || body != "b" {
		t.Fatalf("the upgrade request: %d %q, want the target's answer over HTTP/1.1", resp.StatusCode, body)
	}
	if got := b.lastRequest().Header; got.Get("Upgrade") != "" || got.Get("Http2-Settings") != "" {
		t.Errorf("the target got the client's upgrade: %v", got)
	}
	before := b.count()
	resp, body = exchangeOn(t, c, br, "GET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 404 || !strings.Contains(body, `"reason":"no_route"`) || b.count() != before {
		t.Errorf("the next request: %d %s (target hits %d -> %d), want 404 no_route", resp.StatusCode, body, before, b.count())
	}
}

// TestResponseTrailersReachTheClient has the target send trailer fields
// after a chunked body: an HTTP/1.1 client gets them after the body, and
// an HTTP/2 client too.
func TestResponseTrailersReachTheClient(t *testing.T) {
	t.Parallel()
	onEngines(t, func(t *testing.T) {
		t.Parallel()
		b := newBackend(t, "b")
		b.handle(func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Trailer", "X-Checksum")
			io.WriteString(w, "body")
			w.(http.Flusher).Flush()
			w.Header().Set("X-Checksum", "abc")
			return true
		})
		_, base := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, b.addr()), Options{})
		resp, err := testClient.Get(base + "/t")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "body" || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("HTTP/1.1: body %q trailers %v, want the target's X-Checksum after the body", body, resp.Trailer)
		}
		tlsGW, tc := tlsGateway(t, b)
		h2 := &http.Transport{TLSClientConfig: tc.Clone(), Protocols: new(http.Protocols)}
		h2.Protocols.SetHTTP2(true)
		resp, err = (&http.Client{Transport: h2, Timeout: 5 * time.Second}).Get("https://" + tlsGW.Addr("main") + "/t")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || string(body) != "body" || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("HTTP/2: %s body %q trailers %v, want the target's X-Checksum after the body", resp.Proto, body, resp.Trailer)
		}
	})
}
