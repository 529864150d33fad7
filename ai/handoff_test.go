package ai

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
)

// handOffWriter is a host's writer that takes a stream's relay when take
// says so (HandOff).
type handOffWriter struct {
	h     http.Header
	out   bytes.Buffer
	take  bool
	relay *Relay
}

func (w *handOffWriter) Header() http.Header         { return w.h }
func (w *handOffWriter) WriteHeader(int)             {}
func (w *handOffWriter) Flush()                      {}
func (w *handOffWriter) Write(p []byte) (int, error) { return w.out.Write(p) }
func (w *handOffWriter) HandOff(relay *Relay) bool {
	if !w.take {
		return false
	}
	w.relay = relay
	return true
}

// TestHandOffRelaysTheRest: a writer that takes a stream's relay gets it
// once the first token is out, Serve returns with the call not over (no
// record yet, no end of stream), and the relay streams the rest and ends
// the call with its record; a writer that declines gets the whole stream
// from Serve.
func TestHandOffRelaysTheRest(t *testing.T) {
	t.Parallel()
	svc := benchService(t, burstTransport{})
	defer svc.Close()
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello"}],"max_tokens":128}`
	for _, take := range []bool{true, false} {
		w := &handOffWriter{h: http.Header{}, take: take}
		var recs []Record
		ctx := WithRecordHook(context.Background(), func(r *Record) { recs = append(recs, *r) })
		svc.Serve(ctx, w, &Request{Method: http.MethodPost, Path: "/v1/chat/completions", Header: http.Header{"Authorization": {"Bearer sk-t"}}, Body: strings.NewReader(body)})
		if take {
			if w.relay == nil {
				t.Fatal("the writer took no relay")
			}
			if len(recs) != 0 || !strings.Contains(w.out.String(), "tok0 ") || strings.Contains(w.out.String(), "[DONE]") {
				t.Fatalf("before the relay: %d records, stream %q; want none, and the first token without the end", len(recs), w.out.String())
			}
			if !w.relay.Run(func() { t.Error("a stream whose events are all at hand waited") }) {
				t.Fatal("the relay waits, with every event at hand")
			}
		} else if w.relay != nil {
			t.Fatal("a writer that declined has a relay")
		}
		out := w.out.String()
		if len(recs) != 1 || recs[0].Outcome != OutcomeOK || recs[0].OutputTokens != 100 || recs[0].Attempts != 1 {
			t.Fatalf("take %v: records %+v, want one ok record of 100 output tokens and one attempt", take, recs)
		}
		if !strings.Contains(out, "tok99 ") || !strings.HasSuffix(out, "data: [DONE]\n\n") {
			t.Errorf("take %v: the stream lacks its last token or its end: %q", take, out[max(0, len(out)-200):])
		}
	}
}
