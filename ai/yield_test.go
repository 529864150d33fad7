package ai

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// burstTransport answers every call with a whole 100-token stream at
// once, as a provider that answers at once does: every event is at hand
// when the stream reads it.
type burstTransport struct{}

func (burstTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(cannedStream(100))), Request: r}, nil
}

// writeLog records which stream wrote, in the order of the writes.
type writeLog struct {
	mu     sync.Mutex
	writes []string
}

type loggedWriter struct {
	name string
	log  *writeLog
	h    http.Header
}

func (w *loggedWriter) Header() http.Header { return w.h }
func (w *loggedWriter) WriteHeader(int)     {}
func (w *loggedWriter) Flush()              {}
func (w *loggedWriter) Write(p []byte) (int, error) {
	w.log.mu.Lock()
	w.log.writes = append(w.log.writes, w.name)
	w.log.mu.Unlock()
	return len(p), nil
}

// TestStreamsShareOneProcessor: on one processor, two streams whose
// providers sent their whole answers at once take turns, so the second
// one's first token does not wait for the whole of the first stream.
// Nothing in either stream blocks, so without the yield between chunks
// the first stream to run writes all of its chunks before the other
// writes one.
func TestStreamsShareOneProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	svc := benchService(t, burstTransport{})
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}],"max_tokens":128}`
	log := &writeLog{}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b"} {
		wg.Go(func() {
			req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer sk-t")
			svc.ServeHTTP(&loggedWriter{name: name, log: log, h: http.Header{}}, req)
		})
	}
	wg.Wait()
	w := log.writes
	if len(w) < 4 {
		t.Fatalf("writes %v: want each stream's chunks", w)
	}
	first := w[0]
	lastOfFirst := strings.LastIndex(strings.Join(w, ""), first)
	other := strings.IndexFunc(strings.Join(w, ""), func(r rune) bool { return string(r) != first })
	if other < 0 || other > lastOfFirst {
		t.Errorf("stream %s wrote all of its %d writes before the other wrote one: %s", first, strings.Count(strings.Join(w, ""), first), strings.Join(w, ""))
	}
}
