package ai

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/relia-dev/relia/ai/mock"
)

// TestCallSpan: with an SDK, each call is a client span named by its
// operation and model, with the GenAI attributes, though the call names
// and labels it only once the span is known to record.
func TestCallSpan(t *testing.T) {
	spans := callSpanRecorder()
	seen := len(spans.Ended())
	_, url := startMock(t, mock.Options{})
	gw := startService(t, `kind: AIGateway
version: relia/v1
metadata: {name: x}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: k}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
`, nil, Options{}, url)
	resp, err := http.Post(gw.url+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, s := range spans.Ended()[seen:] {
		if s.Name() != "chat gpt-4o-mini" {
			continue
		}
		attrs := map[attribute.Key]string{}
		for _, a := range s.Attributes() {
			attrs[a.Key] = a.Value.Emit()
		}
		if s.SpanKind() != trace.SpanKindClient || attrs["gen_ai.operation.name"] != "chat" || attrs["gen_ai.request.model"] != "gpt-4o-mini" ||
			attrs["gen_ai.provider.name"] != "openai" {
			t.Errorf("span %s: kind %v, attributes %v", s.Name(), s.SpanKind(), attrs)
		}
		return
	}
	var names []string
	for _, s := range spans.Ended()[seen:] {
		names = append(names, s.Name())
	}
	t.Fatalf("no span named chat gpt-4o-mini among %q", names)
}

// callSpans records the spans of the package's tracer, which delegates
// to the first global provider set, for the process: a provider set again
// (TestCallSpan run with -count above 1) would not be the tracer's.
var callSpans struct {
	once sync.Once
	rec  *tracetest.SpanRecorder
}

// callSpanRecorder sets the global provider, once, and returns its
// recorder.
func callSpanRecorder() *tracetest.SpanRecorder {
	callSpans.once.Do(func() {
		callSpans.rec = tracetest.NewSpanRecorder()
		otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(callSpans.rec)))
	})
	return callSpans.rec
}
