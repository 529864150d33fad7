package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/relia-dev/relia/callstore"
)

// keptCalls is a callstore.Recorder that keeps a copy of each record
// (the gateway's strings point into buffers it reuses) and hands it on.
type keptCalls chan callstore.Record

func (k keptCalls) Record(r *callstore.Record) {
	b, _ := json.Marshal(r)
	var c callstore.Record
	json.Unmarshal(b, &c)
	k <- c
}

// next is the next record, by request path.
func (k keptCalls) next(t *testing.T, path string) callstore.Record {
	t.Helper()
	select {
	case r := <-k:
		if r.Path != path {
			t.Fatalf("the next record is of %s, not %s", r.Path, path)
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatalf("no record of %s", path)
	}
	return callstore.Record{}
}

// textBody is n bytes of printable text, different at every offset.
func textBody(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(rng.IntN(26))
	}
	return b
}

// chunked writes body in HTTP/1.1 chunks of size n.
func chunked(body []byte, n int) string {
	var sb strings.Builder
	for len(body) > 0 {
		k := min(n, len(body))
		fmt.Fprintf(&sb, "%x\r\n%s\r\n", k, body[:k])
		body = body[k:]
	}
	sb.WriteString("0\r\n\r\n")
	return sb.String()
}

// TestCapturedBodiesAreCappedRedactedAndForwardedWhole sends requests as
// raw bytes on loopback to a route that keeps bodies (a 64-byte cap, two
// JSON paths redacted) and to one that does not: Content-Length and
// chunked bodies, bodies far past the cap both ways (the request streamed
// to the target as it arrives), a JSON body and a text body, over
// HTTP/1.1 and HTTP/2. The target and the client get every byte as
// sent; the record keeps the first 64 bytes with the whole size, the
// JSON with its secrets redacted, the response's head as the target sent
// it, and nothing for the other route.
func TestCapturedBodiesAreCappedRedactedAndForwardedWhole(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string][32]byte{} // what the target received, by path
	be := newBackend(t, "be")
	bigResp := textBody(150_000, 9)
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return true
		}
		mu.Lock()
		got[r.URL.Path] = sha256.Sum256(body)
		mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/json"):
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"token":"tok-s3cret","ok":true}`)
		case strings.HasSuffix(r.URL.Path, "/big"):
			w.Header().Set("X-Kind", "big")
			for p := bigResp; len(p) > 0; p = p[min(len(p), 10_000):] {
				w.Write(p[:min(len(p), 10_000)])
				w.(http.Flusher).Flush() // chunked, in pieces
			}
		default:
			w.Write(body)
		}
		return true
	})
	calls := make(keptCalls, 16)
	g, base := startGateway(t, fmt.Sprintf(`  listeners:
    - {name: main, address: 127.0.0.1:0}
    - {name: h2, address: 127.0.0.1:0, h2c: true}
  upstreams: [{name: be, targets: [{address: %q}]}]
  routes:
    - {name: kept, match: {path: {prefix: /kept}}, upstream: be, capture: {headers: true, bodies: true, maxBodyBytes: 64, redactJSONPaths: [password, token]}}
    - {name: plain, match: {path: {prefix: /plain}}, upstream: be}
`, be.addr()), Options{Calls: calls})

	received := func(path string, want []byte) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if got[path] != sha256.Sum256(want) {
			t.Errorf("%s: the target did not receive the %d bytes sent", path, len(want))
		}
	}
	cut := func(b []byte) string { return fmt.Sprintf("%s…[%d bytes in all]", b[:64], len(b)) }

	// A JSON body with Content-Length, secrets both ways.
	login := []byte(`{"user":"ann","password":"hunter2"}`)
	resp, body := rawExchange(t, base, fmt.Sprintf("POST /kept/json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(login), login))
	if resp.StatusCode != 200 || string(body) != `{"token":"tok-s3cret","ok":true}` {
		t.Fatalf("json: %d %q", resp.StatusCode, body)
	}
	received("/kept/json", login)
	r := calls.next(t, "/kept/json")
	if r.RequestBody != `{"password":"[redacted]","user":"ann"}` || r.ResponseBody != `{"ok":true,"token":"[redacted]"}` || r.BytesIn != int64(len(login)) || r.BytesOut != 32 {
		t.Errorf("json record: in %q (%d bytes), out %q (%d bytes)", r.RequestBody, r.BytesIn, r.ResponseBody, r.BytesOut)
	}

	// A text body in chunks, echoed.
	hello := []byte("hello, chunked world")
	resp, body = rawExchange(t, base, "POST /kept/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+chunked(hello, 7))
	if resp.StatusCode != 200 || !bytes.Equal(body, hello) {
		t.Fatalf("chunked: %d %q", resp.StatusCode, body)
	}
	received("/kept/echo", hello)
	if r := calls.next(t, "/kept/echo"); r.RequestBody != string(hello) || r.ResponseBody != string(hello) {
		t.Errorf("chunked record: %q, %q", r.RequestBody, r.ResponseBody)
	}

	// Bodies far past the cap: announced past what the gateway holds
	// (it streams), and chunked past it (held, then streamed); echoed.
	for i, c := range []struct {
		path string
		body []byte
		wire func([]byte) string
	}{
		{"/kept/echo-long", textBody(200_000, 1), func(b []byte) string { return fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(b), b) }},
		{"/kept/echo-chunks", textBody(100_000, 2), func(b []byte) string { return "Transfer-Encoding: chunked\r\n\r\n" + chunked(b, 8192) }},
	} {
		resp, body := rawExchange(t, base, "POST "+c.path+" HTTP/1.1\r\nHost: x\r\n"+c.wire(c.body))
		if resp.StatusCode != 200 || !bytes.Equal(body, c.body) {
			t.Fatalf("%s: %d, %d bytes back of %d", c.path, resp.StatusCode, len(body), len(c.body))
		}
		received(c.path, c.body)
		r := calls.next(t, c.path)
		if r.RequestBody != cut(c.body) || r.ResponseBody != cut(c.body) || r.BytesIn != int64(len(c.body)) || r.BytesOut != int64(len(c.body)) {
			t.Errorf("case %d, %s: in %q (%d bytes), out %q (%d bytes)", i, c.path, r.RequestBody, r.BytesIn, r.ResponseBody, r.BytesOut)
		}
	}

	// A response past the cap, chunked by the target.
	resp, body = rawExchange(t, base, "GET /kept/big HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 || !bytes.Equal(body, bigResp) {
		t.Fatalf("big: %d, %d bytes", resp.StatusCode, len(body))
	}
	// The response's head is kept as it was, though its body streamed
	// through the buffer the head was read into.
	if r := calls.next(t, "/kept/big"); r.RequestBody != "" || r.ResponseBody != cut(bigResp) || !hasHeader(r.ResponseHeaders, "X-Kind", "big") {
		t.Errorf("big record: %q, %q, %v", r.RequestBody, r.ResponseBody, r.ResponseHeaders)
	}

	// A route that does not capture keeps no body.
	resp, body = rawExchange(t, base, fmt.Sprintf("POST /plain/json HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(login), login))
	if resp.StatusCode != 200 || len(body) != 32 {
		t.Fatalf("plain: %d %q", resp.StatusCode, body)
	}
	received("/plain/json", login)
	if r := calls.next(t, "/plain/json"); r.RequestBody != "" || r.ResponseBody != "" || r.BytesIn != int64(len(login)) {
		t.Errorf("plain record keeps bodies: %+v", r)
	}

	// HTTP/2: the same capture.
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}}
	long := textBody(90_000, 3)
	for _, c := range []struct {
		path       string
		body       []byte
		wantIn     string
		wantOut    string
		wantStatus int
	}{
		{"/kept/json", login, `{"password":"[redacted]","user":"ann"}`, `{"ok":true,"token":"[redacted]"}`, 200},
		{"/kept/echo-h2", long, cut(long), cut(long), 200},
	} {
		hr, err := h2.Post("http://"+g.Addr("h2")+c.path, "text/plain", bytes.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		back, _ := io.ReadAll(hr.Body)
		hr.Body.Close()
		if hr.StatusCode != c.wantStatus || (c.path == "/kept/echo-h2" && !bytes.Equal(back, long)) {
			t.Fatalf("h2 %s: %d, %d bytes", c.path, hr.StatusCode, len(back))
		}
		received(c.path, c.body)
		if r := calls.next(t, c.path); r.RequestBody != c.wantIn || r.ResponseBody != c.wantOut {
			t.Errorf("h2 %s record: %q, %q", c.path, r.RequestBody, r.ResponseBody)
		}
	}
}

// TestBodyTapMemoryFollowsTheCap: however much arrives, in whatever
// pieces, a tap holds the first limit bytes in a buffer no larger.
func TestBodyTapMemoryFollowsTheCap(t *testing.T) {
	t.Parallel()
	body := textBody(1<<20, 4)
	for _, piece := range []int{1, 100, 16 << 10, 1 << 20} {
		tap := bodyTap{limit: 3000}
		for p := body; len(p) > 0; p = p[min(piece, len(p)):] {
			tap.add(p[:min(piece, len(p))])
		}
		if !bytes.Equal(tap.buf, body[:3000]) || cap(tap.buf) > 3000 {
			t.Errorf("pieces of %d: kept %d bytes in a buffer of %d", piece, len(tap.buf), cap(tap.buf))
		}
	}
}

// TestCaptureConfigIsChecked: a capture's mistakes are found where
// `relia validate` reports them, with their place.
func TestCaptureConfigIsChecked(t *testing.T) {
	t.Parallel()
	doc := `kind: Gateway
version: relia/v1
spec:
  listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
  upstreams:
    - {name: be, targets: [{address: "127.0.0.1:9"}]}
    - {name: rpc, targets: [{address: "127.0.0.1:9"}], grpc: {}}
  routes:
    - {name: big, match: {path: {prefix: /a}}, upstream: be, capture: {bodies: true, maxBodyBytes: 8MiB}}
    - {name: path, match: {path: {prefix: /b}}, upstream: be, capture: {bodies: true, redactJSONPaths: ["a..b.."]}}
    - {name: rpc, match: {path: {prefix: /c}}, upstream: rpc, capture: {bodies: true}}
`
	_, err := Parse("gw.yaml", []byte(doc))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"gw.yaml:9:", "spec.routes[0].capture", "8MiB", "gw.yaml:10:", `"a..b.."`, "spec.routes[2].capture.bodies", "gRPC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestCaptureFollowsReload: what a route captures is part of the route,
// so a reload that turns bodies on keeps them from the next call.
func TestCaptureFollowsReload(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "be")
	calls := make(keptCalls, 4)
	g, base := startGateway(t, fmt.Sprintf(`  upstreams: [{name: be, targets: [{address: %q}]}]
  routes: [{name: r, upstream: be, capture: {headers: true}}]
`, be.addr()), Options{Calls: calls})
	send := func() callstore.Record {
		t.Helper()
		if resp, body := rawExchange(t, base, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nping"); resp.StatusCode != 200 || string(body) != "be" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		return calls.next(t, "/x")
	}
	if r := send(); r.RequestBody != "" || r.ResponseBody != "" || len(r.RequestHeaders) == 0 {
		t.Fatalf("headers only: %+v", r)
	}
	next := *g.Config()
	next.Spec.Routes = slices.Clone(next.Spec.Routes)
	next.Spec.Routes[0].Capture = &callstore.Capture{Bodies: true}
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if r := send(); r.RequestBody != "ping" || r.ResponseBody != "be" || len(r.RequestHeaders) != 0 {
		t.Errorf("bodies only, after the reload: %+v", r)
	}
}
