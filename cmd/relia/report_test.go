package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report/reporttest"
)

// writeRecorder saves a recorder of n seconds of traffic (10 requests a
// second, one failure in ten) starting at start, with the given bucket
// width, and returns its path.
func writeRecorder(t *testing.T, dir, name string, start time.Time, n int, width time.Duration) string {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{BucketWidth: width})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n * 10 {
		o := outcome.Outcome{Start: start.Add(time.Duration(i) * 100 * time.Millisecond), Latency: time.Duration(5+i%20) * time.Millisecond, Status: 200}
		if i%10 == 3 {
			o.Status = 503
		}
		o.Class = outcome.ClassifyResponse(o.Status, nil)
		rec.Record(o)
	}
	data, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	seg0 := writeRecorder(t, dir, "seg-0.json", start, 30, time.Second)
	seg1 := writeRecorder(t, dir, "seg-1.json", start.Add(30*time.Second), 30, time.Second)

	out := filepath.Join(dir, "report.html")
	code, _, errOut := runCLI(t, "report", seg0, seg1, "--html", out, "--title", "checkout <soak>")
	if code != exitPass || !strings.Contains(errOut, "wrote "+out) {
		t.Fatalf("report: exit %d, stderr %q", code, errOut)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	html := string(data)
	for _, want := range []string{
		"<title>checkout &lt;soak&gt;</title>",
		"2025-11-28 09:00:00 to 09:01:00 UTC, 1s buckets",
		`<div class="stat-label">Requests</div><div class="stat-value">600</div>`, // both segments
		`<div class="stat-label">Availability</div><div class="stat-value">90.00%</div>`,
		"Outcomes by class", "Responses by status",
		`<span class="chart-title">Latency</span>`, `<span class="chart-title">Errors by class</span>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}

	// The report must also hold up in a browser.
	if reporttest.ChromiumPath() != "" || os.Getenv("CI") != "" {
		res := reporttest.OpenInChromium(t, out)
		if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 || len(res.Requests) != 1 {
			t.Errorf("in chromium: console errors %q, failed requests %q, requests %q", res.ConsoleErrors, res.FailedRequests, res.Requests)
		}
		var drawn int
		res.Eval(t, `Array.from(document.querySelectorAll("svg.plot g.series path")).filter(p => p.getTotalLength() > 0).length`, &drawn)
		if drawn != 4+2+1 {
			t.Errorf("%d drawn series, want 7", drawn)
		}
	}

	var empty outcome.Recorder
	data, err = empty.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	emptyPath := filepath.Join(dir, "empty.json")
	os.WriteFile(emptyPath, data, 0o644)
	code, stdout, _ := runCLI(t, "report", emptyPath, "--html", "-")
	if code != exitPass || !strings.Contains(stdout, "The results hold no requests.") || strings.Count(stdout, ">no data<") != 3 {
		t.Errorf("report of an empty recorder: exit %d, output %.200q", code, stdout)
	}

	code, stdout, _ = runCLI(t, "report", seg0, "--html", "-")
	if code != exitPass || !strings.HasPrefix(stdout, "<!DOCTYPE html>") || !strings.Contains(stdout, "relia report: seg-0.json") {
		t.Errorf("report --html -: exit %d, stdout starts %.60q", code, stdout)
	}
}

func TestReportCommandBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	good := writeRecorder(t, dir, "good.json", start, 2, time.Second)
	fine := writeRecorder(t, dir, "fine.json", start, 2, 100*time.Millisecond)
	wrong := filepath.Join(dir, "wrong.json")
	os.WriteFile(wrong, []byte(`{"schema": "relia/outcome/v0"}`), 0o644)
	out := filepath.Join(dir, "out.html")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no files", []string{"report", "--html", out}, "requires at least 1 arg"},
		{"no --html", []string{"report", good}, "--html is required"},
		{"missing file", []string{"report", filepath.Join(dir, "missing.json"), "--html", out}, "missing.json"},
		{"not a recorder", []string{"report", wrong, "--html", out}, "wrong.json"},
		{"bucket widths differ", []string{"report", good, fine, "--html", out}, "merging results " + fine},
	}
	for _, tt := range tests {
		code, _, errOut := runCLI(t, tt.args...)
		if code != exitBadInput || !strings.Contains(errOut, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tt.name, code, errOut, exitBadInput, tt.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a report was written for bad input")
	}
}
