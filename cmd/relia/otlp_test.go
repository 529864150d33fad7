package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/relia-dev/relia/load"
)

// TestLoadOTLPToALoopbackCollector: --otlp sends the run through the
// OpenTelemetry SDK's exporter to a collector the test serves on
// loopback; the requests it receives add up to the run's count, and the
// latency histogram counts every sent request.
func TestLoadOTLPToALoopbackCollector(t *testing.T) {
	t.Parallel()
	collector, exports := otlpCollector(t)
	srv := loadServer(t)
	out := filepath.Join(t.TempDir(), "r.json")
	code, stdout, stderr := runCLI(t, "load", srv.URL+"/x", "--rate", "100", "--duration", "1s", "--late-after", "1s",
		"--out", out, "--otlp", collector)
	// Inconclusive (a generator starved by the rest of the suite) still
	// exports the run, which is what this test checks.
	if code != exitPass && code != exitInconclusive {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res, err := load.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	got := exports()
	if len(got) != 1 || len(got[0].ResourceMetrics) != 1 {
		t.Fatalf("collector got %d exports", len(got))
	}
	rm := got[0].ResourceMetrics[0]
	scenario := ""
	for _, a := range rm.Resource.Attributes {
		if a.Key == "relia.scenario" {
			scenario = a.Value.GetStringValue()
		}
	}
	if scenario != res.Scenario {
		t.Fatalf("resource scenario %q, want %q", scenario, res.Scenario)
	}
	var requests int64
	var histCount uint64
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch m.Name {
		case "relia.load.requests":
			for _, p := range m.GetSum().DataPoints {
				requests += p.GetAsInt()
			}
		case "relia.load.request.duration":
			for _, p := range m.GetHistogram().DataPoints {
				histCount += p.Count
				var n uint64
				for _, c := range p.BucketCounts {
					n += c
				}
				if n != p.Count {
					t.Errorf("histogram buckets hold %d of %d", n, p.Count)
				}
			}
		}
	}
	if sum := res.Requests.Total(); requests != sum.Total || requests != 100 || histCount != uint64(sum.Sent()) {
		t.Fatalf("collector: %d requests, histogram %d; run: %d requests, %d sent", requests, histCount, sum.Total, sum.Sent())
	}
	code, _, stderr = runCLI(t, "load", srv.URL, "--rate", "10", "--duration", "100ms", "--otlp", "127.0.0.1:4318")
	if code != exitBadInput || !strings.Contains(stderr, "--otlp \"127.0.0.1:4318\": want an http:// or https:// URL") {
		t.Fatalf("bad --otlp: exit %d, %s", code, stderr)
	}
}

// otlpCollector serves OTLP/HTTP metric exports on loopback; it returns
// the URL to export to and a func that returns the exports received.
func otlpCollector(t *testing.T) (string, func() []*colmetricspb.ExportMetricsServiceRequest) {
	t.Helper()
	var mu sync.Mutex
	var got []*colmetricspb.ExportMetricsServiceRequest
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := &colmetricspb.ExportMetricsServiceRequest{}
		if r.URL.Path != "/v1/metrics" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, req)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(collector.Close)
	return collector.URL + "/v1/metrics", func() []*colmetricspb.ExportMetricsServiceRequest {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}
