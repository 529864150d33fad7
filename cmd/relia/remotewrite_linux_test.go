package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/promtest"
	"github.com/relia-dev/relia/load"
)

// promQuery runs an instant query and returns the single value it gives.
func promQuery(t *testing.T, base, q string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var doc struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, body)
	}
	if len(doc.Data.Result) != 1 {
		return 0, false
	}
	v, err := strconv.ParseFloat(fmt.Sprint(doc.Data.Result[0].Value[1]), 64)
	return v, err == nil
}

// TestLoadRemoteWriteToARealPrometheus: --remote-write lands the run in a
// real Prometheus started with its remote-write receiver; a query returns
// the run's request count, by name and by class, and its p99 series.
func TestLoadRemoteWriteToARealPrometheus(t *testing.T) {
	t.Parallel()
	prom := promtest.Start(t, "global: {scrape_interval: 15s}\n", "--web.enable-remote-write-receiver")
	srv := loadServer(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	code, stdout, stderr := runCLI(t, "load", srv.URL+"/x", "--rate", "100", "--duration", "1s", "--late-after", "1s",
		"--out", out, "--remote-write", prom+"/api/v1/write")
	// Inconclusive (a generator starved by the rest of the suite) still
	// pushes the run, which is what this test checks.
	if code != exitPass && code != exitInconclusive {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	res, err := load.ReadResult(out)
	if err != nil {
		t.Fatal(err)
	}
	sel := fmt.Sprintf(`{scenario=%q}`, res.Scenario)
	// The samples are written as the push ends; a query sees them at once.
	deadline := time.Now().Add(10 * time.Second)
	var total float64
	for {
		var ok bool
		if total, ok = promQuery(t, prom, "sum(relia_load_requests_total"+sel+")"); ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if want := float64(res.Requests.Total().Total); total != want || want != 100 {
		t.Fatalf("Prometheus counts %v requests, the run %v", total, want)
	}
	okSel := fmt.Sprintf(`{scenario=%q,class="ok"}`, res.Scenario)
	if v, ok := promQuery(t, prom, "sum(relia_load_requests_total"+okSel+")"); !ok || v != float64(res.Requests.Total().ByClass[0]) {
		t.Fatalf("ok requests in Prometheus: %v (%v)", v, ok)
	}
	q := fmt.Sprintf(`count(relia_load_request_duration_seconds{scenario=%q,quantile="0.99"})`, res.Scenario)
	if v, ok := promQuery(t, prom, q); !ok || v != 2 { // the run's and the one request name's
		t.Fatalf("p99 series: %v (%v)", v, ok)
	}

	code, _, stderr = runCLI(t, "load", srv.URL, "--rate", "10", "--duration", "100ms", "--remote-write", "127.0.0.1:9090")
	if code != exitBadInput || !strings.Contains(stderr, "want an http:// or https:// URL") {
		t.Fatalf("bad --remote-write: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "load", srv.URL, "--rate", "10", "--duration", "100ms", "--late-after", "1s", "--remote-write", srv.URL+"/login")
	if code != exitRuntime || !strings.Contains(stderr, "remote write to "+srv.URL+"/login") {
		t.Fatalf("refused push: exit %d, %s", code, stderr)
	}
}
