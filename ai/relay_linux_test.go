//go:build linux && !386

package ai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// parkingWriter is a host's writer that takes every stream's relay
// (HandOff), its output written from whichever goroutine runs it.
type parkingWriter struct {
	mu    sync.Mutex
	h     http.Header
	out   bytes.Buffer
	relay *Relay
}

func (w *parkingWriter) Header() http.Header { return w.h }
func (w *parkingWriter) WriteHeader(int)     {}
func (w *parkingWriter) Flush()              {}
func (w *parkingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(p)
}
func (w *parkingWriter) HandOff(r *Relay) bool { w.relay = r; return true }
func (w *parkingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// TestRelayWaitsWithNoGoroutine: a handed-off stream over relia's own
// HTTP/1.1 client whose provider has sent nothing more waits with no
// goroutine (Run reports false), and goes on from a new one (resume)
// when the provider's next token comes, when its idle timeout passes,
// and when its call is cancelled; each ends the call as a relay on one
// goroutine would: its record (with the failover before the first
// token), its last event.
func TestRelayWaitsWithNoGoroutine(t *testing.T) {
	t.Parallel()
	for _, end := range []string{"tokens", "idle", "cancel"} {
		t.Run(end, func(t *testing.T) {
			t.Parallel()
			next, finish := make(chan struct{}), make(chan struct{})
			prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/event-stream")
				for i := 0; ; i++ {
					fmt.Fprintf(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i)
					w.(http.Flusher).Flush()
					select {
					case <-next:
					case <-finish:
						io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n")
						return
					case <-r.Context().Done():
						return
					}
				}
			}))
			defer prov.Close()
			defer close(finish)
			bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, `{"error":{"message":"down","type":"server_error"}}`, http.StatusInternalServerError)
			}))
			defer bad.Close()
			fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
			cfg, err := ParseBundle("relay.yaml", []byte(`
kind: AIGateway
version: relia/v1
metadata: {name: relay}
spec:
  providers:
    - {name: a, type: openai, url: "`+prov.URL+`/v1", keys: [{value: sk}]}
    - {name: bad, type: openai, url: "`+bad.URL+`/v1", keys: [{value: sk}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: bad}, {provider: a}], timeouts: {firstToken: 10s, idle: 10s, total: 300s}}
`))
			if err != nil {
				t.Fatal(err)
			}
			svc, err := New(cfg.Config, cfg.Catalog, Options{Clock: fc})
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			recs := make(chan Record, 1)
			ctx, cancel := context.WithCancel(WithRecordHook(context.Background(), func(r *Record) { recs <- *r }))
			defer cancel()
			w := &parkingWriter{h: http.Header{}}
			body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}]}`
			svc.Serve(ctx, w, &Request{Method: http.MethodPost, Path: "/v1/chat/completions", Header: http.Header{}, Body: strings.NewReader(body)})
			if w.relay == nil {
				t.Fatal("the writer took no relay")
			}
			waited := make(chan struct{}, 8)
			var run func()
			run = func() {
				if !w.relay.Run(run) {
					waited <- struct{}{}
				}
			}
			wait := func(what string) {
				t.Helper()
				select {
				case <-waited:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: the relay did not wait", what)
				}
			}
			run()
			wait("after the first token")
			var rec Record
			switch end {
			case "tokens":
				for i := 1; i <= 3; i++ {
					next <- struct{}{}
					wait(fmt.Sprintf("after token %d", i))
				}
				for deadline := time.Now().Add(10 * time.Second); !strings.Contains(w.String(), "tok3 "); {
					if time.Now().After(deadline) {
						t.Fatalf("after three tokens the client has %q", w.String())
					}
					time.Sleep(time.Millisecond)
				}
				if strings.Contains(w.String(), "[DONE]") {
					t.Fatalf("the stream ended before its provider's: %q", w.String())
				}
				finish <- struct{}{}
				rec = <-recs
				if rec.Outcome != OutcomeOK || rec.OutputTokens != 4 || rec.Attempts != 2 || len(rec.Path) != 2 || !strings.HasPrefix(rec.Path[0], "bad/gpt-4o-mini:") || rec.Path[1] != "a/gpt-4o-mini:ok" {
					t.Errorf("record %+v, want ok with 4 output tokens, two attempts, path [bad/gpt-4o-mini:..., a/gpt-4o-mini:ok]", rec)
				}
				if !strings.HasSuffix(w.String(), "data: [DONE]\n\n") {
					t.Errorf("the stream does not end with [DONE]: %q", w.String())
				}
			case "idle":
				fc.Advance(10 * time.Second)
				rec = <-recs
				if rec.Outcome != OutcomeFailedMidStream || rec.Reason != "timeout" || !strings.Contains(w.String(), "stream_interrupted") {
					t.Errorf("a stream past its idle timeout: record %+v, stream %q; want failed_mid_stream, timeout, an error event", rec, w.String())
				}
			case "cancel":
				cancel()
				rec = <-recs
				if rec.Outcome != OutcomeCancelled || rec.Status != 499 {
					t.Errorf("a cancelled stream's record %+v, want cancelled, 499", rec)
				}
			}
			select {
			case <-waited:
				t.Error("the relay waited after its call ended")
			default:
			}
		})
	}
}
