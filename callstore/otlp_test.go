package callstore

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collogs "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	"google.golang.org/protobuf/proto"

	"github.com/relia-dev/relia/clock"
)

// otlpCollector is an OTLP/HTTP logs endpoint that keeps what it gets.
type otlpCollector struct {
	mu   sync.Mutex
	recs []*logspb.LogRecord
	res  []string
	down bool
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req collogs.ExportLogsServiceRequest
	if r.URL.Path != "/v1/logs" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	for _, rl := range req.ResourceLogs {
		for _, a := range rl.Resource.Attributes {
			if a.Key == "service.name" {
				c.res = append(c.res, a.Value.GetStringValue())
			}
		}
		for _, sl := range rl.ScopeLogs {
			c.recs = append(c.recs, sl.LogRecords...)
		}
	}
	out, _ := proto.Marshal(&collogs.ExportLogsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func TestOTLPSinkExportsCallsAsLogRecords(t *testing.T) {
	t.Parallel()
	col := &otlpCollector{}
	srv := httptest.NewServer(col)
	defer srv.Close()
	ctx := testContext(t)
	sink, err := NewOTLPSink(ctx, OTLPOptions{Endpoint: srv.URL + "/v1/logs", Clock: clock.NewFake(t0.Add(time.Second))})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close(ctx)
	recs := []Record{call(0, "orders", "acme", 200, 10*time.Millisecond), call(1, "chat", "acme", 503, 20*time.Millisecond)}
	recs[1].Model, recs[1].Provider, recs[1].InputTokens, recs[1].OutputTokens, recs[1].Reason = "gpt-4o", "openai", 12, 34, "upstream_5xx"
	if err := sink.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.recs) != 2 || len(col.res) != 1 || col.res[0] != "relia" {
		t.Fatalf("collector got %d records under services %v", len(col.recs), col.res)
	}
	attrs := func(lr *logspb.LogRecord) map[string]any {
		m := map[string]any{}
		for _, a := range lr.Attributes {
			if sv := a.Value.GetStringValue(); sv != "" {
				m[a.Key] = sv
			} else {
				m[a.Key] = a.Value.GetIntValue()
			}
		}
		return m
	}
	ok, failed := col.recs[0], col.recs[1]
	a := attrs(ok)
	if a["http.route"] != "/orders/{id}" || a["relia.tenant"] != "acme" || a["http.response.status_code"] != int64(200) || a["relia.request_id"] != "req-0" {
		t.Errorf("attributes of the first call: %v", a)
	}
	if hex.EncodeToString(ok.TraceId) != recs[0].TraceID || ok.TimeUnixNano != uint64(recs[0].Time.UnixNano()) || ok.EventName != "relia.call" {
		t.Errorf("first call: trace %x, time %d, event %q", ok.TraceId, ok.TimeUnixNano, ok.EventName)
	}
	b := attrs(failed)
	if b["gen_ai.request.model"] != "gpt-4o" || b["gen_ai.usage.output_tokens"] != int64(34) || b["relia.reason"] != "upstream_5xx" || failed.SeverityText != "ERROR" {
		t.Errorf("AI call: %v, severity %s", b, failed.SeverityText)
	}
	col.down = true
	col.mu.Unlock()
	err = sink.Write(ctx, recs)
	col.mu.Lock()
	if err == nil {
		t.Error("a collector answering 503 was reported as a successful export")
	}
}
