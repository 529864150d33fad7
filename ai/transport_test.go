package ai

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/gateway/upstream"
)

// rawProvider serves every connection with answer, whatever it asked,
// after reading the request head; it counts the connections it accepts.
func rawProvider(t *testing.T, answer func(c net.Conn)) (addr string, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					answer(c)
				}
			}()
		}
	}()
	return ln.Addr().String(), accepted
}

func post(t *testing.T, ctx context.Context, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// A provider's answer is framed by relia's codec: one that says both
// Content-Length and chunked (which net/http reads, dropping the length)
// is refused as malformed, so the call fails over rather than trust it.
func TestUpstreamTransportRefusesAmbiguousFraming(t *testing.T) {
	addr, _ := rawProvider(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
	})
	tr := &UpstreamTransport{}
	_, err := tr.RoundTrip(post(t, context.Background(), "http://"+addr+"/v1/chat/completions", `{"model":"m"}`))
	if !errors.Is(err, upstream.ErrInvalidResponse) {
		t.Fatalf("err = %v, want %v", err, upstream.ErrInvalidResponse)
	}
	// net/http reads the same answer as a body of two bytes.
	resp, err := http.DefaultTransport.RoundTrip(post(t, context.Background(), "http://"+addr+"/v1/chat/completions", `{"model":"m"}`))
	if err != nil {
		t.Fatalf("net/http: %v", err)
	}
	resp.Body.Close()
}

// Calls to one provider keep their connection; the request reaches the
// provider with its method, path, host, fields and body.
func TestUpstreamTransportKeepsConnections(t *testing.T) {
	var conns atomic.Int64
	var got atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(r.Method + " " + r.RequestURI + " " + r.Host + " " + r.Header.Get("Authorization") + " " + string(b))
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := &UpstreamTransport{}
	for i := range 3 {
		req := post(t, context.Background(), srv.URL+"/v1/chat/completions?x=1", `{"model":"m"}`)
		req.Header.Set("Authorization", "Bearer k")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != `{"ok":true}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("call %d: %d %q %v", i, resp.StatusCode, b, resp.Header)
		}
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if want := "POST /v1/chat/completions?x=1 " + host + ` Bearer k {"model":"m"}`; got.Load() != want {
		t.Errorf("provider got %q, want %q", got.Load(), want)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 3 calls, want 1", n)
	}
}

// An answer's head reaches the caller as net/http gives it: names in
// canonical form, a repeated field's values in order, the hop-by-hop
// fields (and those Connection names) left out, and every name and value
// a copy that the next answer on the same connection does not change.
func TestUpstreamTransportCopiesTheAnswersHead(t *testing.T) {
	n := 0
	addr, conns := rawProvider(t, func(c net.Conn) {
		n++
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nX-Call: %d\r\nConnection: keep-alive, X-Hop\r\nX-Hop: gone\r\nKeep-Alive: timeout=5\r\nx-ratelimit-remaining: 9\r\nX-Ratelimit-Remaining: 8\r\nContent-Length: 2\r\n\r\n{}", n)
	})
	tr := &UpstreamTransport{}
	var heads []http.Header
	for i := range 2 {
		resp, err := tr.RoundTrip(post(t, context.Background(), "http://"+addr+"/v1/chat/completions", `{"model":"m"}`))
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Status != "200 OK" || resp.Proto != "HTTP/1.1" {
			t.Errorf("call %d: status %q proto %q", i, resp.Status, resp.Proto)
		}
		heads = append(heads, resp.Header)
	}
	for i, h := range heads {
		want := http.Header{
			"Content-Type":          {"application/json"},
			"X-Call":                {strconv.Itoa(i + 1)},
			"X-Ratelimit-Remaining": {"9", "8"},
			"Content-Length":        {"2"},
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("head of call %d after call 2 = %v, want %v", i+1, h, want)
		}
	}
	if c := conns.Load(); c != 1 {
		t.Errorf("%d connections, want 1 (the two answers on one)", c)
	}
}

// Cancelling a call's context ends a read of its body that waits on a
// stalled provider: the idle and total timeouts of a stream rely on it.
func TestUpstreamTransportCancelEndsBodyRead(t *testing.T) {
	stall := make(chan struct{})
	t.Cleanup(func() { close(stall) })
	addr, _ := rawProvider(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata: \r\n")
		<-stall
	})
	ctx, cancel := context.WithCancel(context.Background())
	tr := &UpstreamTransport{}
	resp, err := tr.RoundTrip(post(t, ctx, "http://"+addr+"/v1/chat/completions", `{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 64)
	n, err := resp.Body.Read(b)
	if err != nil || string(b[:n]) != "data: " {
		t.Fatalf("first read: %q %v", b[:n], err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(b)
		read <- err
	}()
	cancel()
	if err := <-read; err == nil {
		t.Fatal("the read of a stalled body went on after the cancel")
	}
}

// BenchmarkTransport weighs one non-streaming provider call over the
// gateway's client against net/http's transport, to a loopback server
// answering at once; allocations per call are the figure to read on a
// busy machine.
func BenchmarkTransport(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, cannedChat)
	}))
	b.Cleanup(srv.Close)
	nethttp := http.DefaultTransport.(*http.Transport).Clone()
	nethttp.DisableCompression = true
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"upstream", &UpstreamTransport{}}, {"nethttp", nethttp}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
			for b.Loop() {
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer k")
				resp, err := tc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// A provider's maxConnections bounds the connections relia opens to it:
// calls past the bound wait for a connection instead of opening one.
func TestProviderMaxConnections(t *testing.T) {
	t.Parallel()
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	_, url := startMockHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, cannedChat)
	}))
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	gw := startService(t, `kind: AIGateway
version: relia/v1
metadata: {name: x}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: k}], maxConnections: 2}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
`, nil, Options{}, url)
	t.Cleanup(open) // before the servers close
	target := func() *upstream.Target {
		ut := gw.svc.transport.(*UpstreamTransport)
		ut.mu.Lock()
		defer ut.mu.Unlock()
		return ut.targets[strings.TrimPrefix(url, "http://")]
	}
	const calls = 5
	errs := make(chan error, calls)
	for range calls {
		go func() {
			resp, err := http.Post(gw.url+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			errs <- err
		}()
	}
	// Wait until every call is either at the provider or waiting for a
	// connection to it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if tg := target(); tg != nil && inFlight.Load() == 2 && tg.Waiting() == calls-2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls never settled at the bound: %d at the provider", inFlight.Load())
		}
	}
	open()
	for range calls {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if m := most.Load(); m != 2 {
		t.Errorf("%d calls at the provider at once, want 2 (maxConnections)", m)
	}
}

// A stream read to its "data: [DONE]" leaves its provider connection
// for the next call: the chunked body's last chunk, which came with the
// last event, is read too. Closed before it, the connection was closed,
// and every stream dialled anew (a TLS handshake each to a real
// provider).
func TestStreamsKeepTheProviderConnection(t *testing.T) {
	// [DONE] not flushed: the server writes it with the body's last chunk.
	prov, conns := countedStreamProvider(false)
	prov.Start()
	t.Cleanup(prov.Close)
	streamFiveOnOneConnection(t, streamingService(t, prov.URL), "tok2 ", nil, conns)
}

// A provider whose body's last chunk comes a while after "data: [DONE]"
// keeps its connection too: the end is read after the client's stream
// ended, on a goroutine of its own. Without that read every stream made
// a new connection.
func TestStreamsKeepTheConnectionOfALateEnd(t *testing.T) {
	addr, accepted := lateEndProvider(t, func() { time.Sleep(20 * time.Millisecond) }) // well after the stream's last event
	streamFiveOnOneConnection(t, streamingService(t, "http://"+addr), "tok0 ", drains(t), accepted)
}

// Streams to an https provider keep its connection too: the stream's
// body reads its last chunk after the client's stream ended, and
// net/http keeps the connection for the next stream.
func TestTLSStreamsKeepTheProviderConnection(t *testing.T) {
	// [DONE] flushed: the body's last chunk comes after the stream's end.
	prov, conns := countedStreamProvider(true)
	prov.StartTLS()
	t.Cleanup(prov.Close)
	svc := streamingServiceWith(t, prov.URL, Options{Transport: &UpstreamTransport{TLS: prov.Client().Transport}})
	streamFiveOnOneConnection(t, svc, "tok2 ", drains(t), conns)
}

// streamFiveOnOneConnection sends five streams through svc one after
// another, each to its [DONE] with token in it, and wants them all on one
// provider connection, of those conns counts. With drained, each waits
// for its body's end to be read (on a goroutine of its own) before the
// next starts.
func streamFiveOnOneConnection(t *testing.T, svc *Service, token string, drained <-chan struct{}, conns *atomic.Int64) {
	t.Helper()
	for i := range 5 {
		w := streamOnce(svc)
		if w.Code != 200 || !strings.Contains(w.Body.String(), token) || !strings.Contains(w.Body.String(), "[DONE]") {
			t.Fatalf("stream %d: %d %q", i, w.Code, w.Body.String())
		}
		if drained == nil {
			continue
		}
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d: its body's end was not read (%d provider connections so far)", i, conns.Load())
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d provider connections for 5 streams one after another, want 1", n)
	}
}

// countedStreamProvider is an unstarted provider that streams three
// tokens and [DONE] (flushed on its own when flushDone, else sent with
// the body's last chunk), and counts the connections made to it.
func countedStreamProvider(flushDone bool) (*httptest.Server, *atomic.Int64) {
	conns := new(atomic.Int64)
	prov := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i)
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
		if flushDone {
			w.(http.Flusher).Flush()
		}
	}))
	prov.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	return prov, conns
}

// A provider that holds its body's last chunk back after "data: [DONE]"
// does not hold the stream: relia reads the body's end only when it is
// already there, and the client's stream ends at [DONE] (raw bytes from
// the provider, whose last chunk comes only as the test ends).
func TestStreamEndsWithoutWaitingForTheLastChunk(t *testing.T) {
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce)
	drained := drains(t)
	addr, _ := lateEndProvider(t, func() { <-release })
	svc := streamingService(t, "http://"+addr)
	done := make(chan *httptest.ResponseRecorder, 1)
	go func() { done <- streamOnce(svc) }()
	select {
	case w := <-done:
		if w.Code != 200 || !strings.Contains(w.Body.String(), "tok0 ") || !strings.Contains(w.Body.String(), "[DONE]") {
			t.Fatalf("%d %q", w.Code, w.Body.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream waited for the provider's last chunk")
	}
	// The end, once it comes, is read on (and the connection kept).
	releaseOnce()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("the body's end was not read once it came")
	}
}

// lateEndProvider is a raw provider that streams one token and
// "data: [DONE]", and writes its chunked body's last chunk once before
// has returned.
func lateEndProvider(t *testing.T, before func()) (addr string, accepted *atomic.Int64) {
	t.Helper()
	return rawProvider(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, ev := range []string{
			"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"}}]}\n\n",
			"data: [DONE]\n\n",
		} {
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
		}
		before()
		io.WriteString(c, "0\r\n\r\n")
	})
}

// drains returns what receives a value as each drain of a stream's body
// (upstreamBody.drain, tlsBody.drain) ends, while t runs.
func drains(t *testing.T) <-chan struct{} {
	ch := make(chan struct{}, 16)
	hook := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	afterDrain.Store(&hook)
	t.Cleanup(func() { afterDrain.Store(nil) })
	return ch
}

// streamingService is an AI service with one OpenAI-compatible provider
// at url.
func streamingService(t *testing.T, url string) *Service {
	t.Helper()
	return streamingServiceWith(t, url, Options{})
}

// streamingServiceWith is streamingService with opts.
func streamingServiceWith(t *testing.T, url string, opts Options) *Service {
	t.Helper()
	cfg, err := ParseBundle("keep.yaml", []byte(`
kind: AIGateway
version: relia/v1
metadata: {name: keep}
spec:
  providers:
    - {name: a, type: openai, url: "`+url+`/v1", keys: [{value: sk}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(cfg.Config, cfg.Catalog, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	return svc
}

// streamOnce asks svc for one streaming chat completion.
func streamOnce(svc *Service) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}`))
	w := httptest.NewRecorder()
	svc.ServeHTTP(w, req)
	return w
}
