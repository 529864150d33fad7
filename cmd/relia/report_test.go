package main

import (
	"os"
	"path/filepath"
	"regexp"
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
		`<span class="chart-title">Latency distribution</span>`, "Responses by status code",
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
		res.Eval(t, `Array.from(document.querySelectorAll("svg.plot g.layer:not([display=none]) g.series path")).filter(p => p.getTotalLength() > 0).length`, &drawn)
		// p50, p90, p99 and max on their shown axes, ok and failed,
		// status errors, the distribution.
		if drawn != 3+1+2+1+1 {
			t.Errorf("%d drawn series, want 8", drawn)
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
	if code != exitPass || !strings.Contains(stdout, "The results hold no requests.") || strings.Count(stdout, ">no data<") != 5 {
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
		{"unknown schema", []string{"report", wrong, "--html", out}, `wrong.json: schema "relia/outcome/v0": relia report reads relia/load/v1`},
		{"not JSON", []string{"report", writeFile(t, dir, "text.json", "hello"), "--html", out}, "text.json: not a JSON object that relia wrote"},
		{"a broken recorder", []string{"report", writeFile(t, dir, "broken.json", `{"schema": "relia/outcome/v1", "bucket_width_ns": -1}`), "--html", out}, "reading results " + filepath.Join(dir, "broken.json")},
		{"kinds mixed", []string{"report", good, writeFile(t, dir, "j.json", `{"schema": "relia/journal/v1"}`), "--html", out}, "schema relia/journal/v1 differs from " + good + "'s relia/outcome/v1"},
		{"two journals", []string{"report", writeFile(t, dir, "j1.json", `{"schema": "relia/journal/v1"}`), writeFile(t, dir, "j2.json", `{"schema": "relia/journal/v1"}`), "--html", out}, "2 given"},
		{"a journal without a verdict", []string{"report", writeFile(t, dir, "nov.json", `{"schema": "relia/journal/v1", "experiment": "x", "exit_code": 4}`), "--html", out}, "nov.json: the run ended before its verdict (exit code 4)"},
		{"broken load results", []string{"report", writeFile(t, dir, "l1.json", `{"schema": "relia/load/v1"}`), "--html", out}, "reading results " + filepath.Join(dir, "l1.json")},
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

// generated matches the page's "Generated ..." line, the one part of two
// renderings of the same results that may differ.
var generated = regexp.MustCompile(`Generated [0-9: -]+UTC\.`)

// samePage checks that two report files are the same page but for the
// time they were generated.
func samePage(t *testing.T, a, b string) {
	t.Helper()
	pa, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	x, y := generated.ReplaceAllString(string(pa), ""), generated.ReplaceAllString(string(pb), "")
	if x != y {
		i := 0
		for i < len(x) && i < len(y) && x[i] == y[i] {
			i++
		}
		t.Errorf("%s and %s differ from byte %d:\n%.300q\n%.300q", filepath.Base(a), filepath.Base(b), i, x[i:], y[i:])
	}
}

// checkInChromium opens a report in headless Chromium: no console error,
// no request beyond the file, every chart drawn; the screenshot is kept
// as a test artifact.
func checkInChromium(t *testing.T, path, artifact string, minCharts int) {
	t.Helper()
	if reporttest.ChromiumPath() == "" && os.Getenv("CI") == "" {
		return
	}
	res := reporttest.OpenInChromiumWith(t, path, reporttest.Options{Timeout: time.Minute})
	reporttest.SaveArtifact(t, artifact, res.ScreenshotPNG)
	if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 || len(res.Requests) != 1 {
		t.Errorf("%s in chromium: console errors %q, failed requests %q, requests %q", artifact, res.ConsoleErrors, res.FailedRequests, res.Requests)
	}
	var charts int
	res.Eval(t, `document.querySelectorAll("figure.chart svg.plot").length`, &charts)
	if charts < minCharts {
		t.Errorf("%s: %d charts, want at least %d", artifact, charts, minCharts)
	}
}

// TestReportRendersLoadResults: relia report reads what relia load --out
// writes, single and merged, and draws the very page relia load --html
// and relia load merge --html drew. At a21340e it refused these files
// ("unknown field \"scenario\"", exit 2).
func TestReportRendersLoadResults(t *testing.T) {
	t.Parallel()
	srv := loadServer(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "s.yaml", scenarioYAML(srv.URL, "", "{name: home, path: /x, checks: [{status: [200]}]}, {name: login, path: /login}")+
		"  thresholds: {checks: [\"rate>0.4\"], http_req_duration: [\"p(99)<2000\"]}\n")

	one, loadHTML := filepath.Join(dir, "r1.json"), filepath.Join(dir, "load.html")
	code, summary, errOut := runCLI(t, "load", file, "--out", one, "--html", loadHTML)
	// Inconclusive (a generator starved by the rest of the suite) still
	// writes both files, which is what this test renders.
	if code != exitPass && code != exitInconclusive {
		t.Fatalf("load: exit %d: %s", code, errOut)
	}
	rep := filepath.Join(dir, "report.html")
	if code, _, errOut := runCLI(t, "report", one, "--html", rep); code != exitPass {
		t.Fatalf("report of load results: exit %d: %s", code, errOut)
	}
	samePage(t, loadHTML, rep)
	page, _ := os.ReadFile(rep)
	html := string(page)
	// The figures of the terminal summary, on the page.
	rps := regexp.MustCompile(`(?m)^\s+all\s+(\d+)\s+([0-9.]+)`).FindStringSubmatch(summary)
	if rps == nil {
		t.Fatalf("no totals in the summary:\n%s", summary)
	}
	for _, want := range []string{
		"<title>relia load: ", `<div class="stat-value">` + rps[1] + `</div><div class="stat-note">` + rps[2] + ` req/s</div>`,
		"<td>checks rate&gt;0.4</td><td>&gt; 40%</td>", "<td>http_req_duration p(99)&lt;2000</td><td>&lt; 2000ms</td>",
		"Latency distribution by request", "503 Service Unavailable", "<h2>Checks</h2>", "<td>home: status in [200]</td>",
		"<h2>Load generator</h2>", "Schedule lag", "the partial first and last buckets are not drawn as dips",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	checkInChromium(t, rep, "load-report.png", 8)

	var parts []string
	for _, seg := range []string{"0/2", "1/2"} {
		out := filepath.Join(dir, "part"+seg[:1]+".json")
		if code, _, errOut := runCLI(t, "load", file, "--segment", seg, "--out", out); code != exitPass {
			t.Fatalf("segment %s: %d %s", seg, code, errOut)
		}
		parts = append(parts, out)
	}
	mergeHTML, merged := filepath.Join(dir, "merge.html"), filepath.Join(dir, "merged.html")
	if code, _, errOut := runCLI(t, append([]string{"load", "merge", "--html", mergeHTML}, parts...)...); code != exitPass {
		t.Fatalf("merge: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, append([]string{"report", "--html", merged}, parts...)...)
	if code != exitPass {
		t.Fatalf("report of merged results: exit %d: %s", code, errOut)
	}
	samePage(t, mergeHTML, merged)
	if page, _ := os.ReadFile(merged); !strings.Contains(string(page), "segments 0/2 1/2") {
		t.Error("the merged report does not say it covers both segments")
	}
}

// TestReportRendersAJournal: relia report re-renders a run's report from
// its journal.json: every table and headline figure of the report.html
// the run wrote is on the page, and the page says what the journal
// cannot give back. At a21340e it refused journals ("unknown field
// \"experiment\"", exit 2).
func TestReportRendersAJournal(t *testing.T) {
	t.Parallel()
	_, path := runFixture(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.NewReplacer("{name: baseline, duration: 2s", "{name: baseline, duration: 1s", "duration: 10s", "duration: 2s").Replace(string(data))
	if err := os.WriteFile(path, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	if code, _, errOut := runJudged(t, "run", path, "--out", out); code != exitFailed {
		t.Fatalf("run: exit %d, want %d (the fault breaks the SLO): %s", code, exitFailed, errOut)
	}
	rep := filepath.Join(t.TempDir(), "again.html")
	if code, _, errOut := runCLI(t, "report", filepath.Join(out, "journal.json"), "--html", rep); code != exitPass {
		t.Fatalf("report of a journal: exit %d: %s", code, errOut)
	}
	orig, err := os.ReadFile(filepath.Join(out, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	pieces := regexp.MustCompile(`(?s)<table>.*?</table>|<div class="stat[^"]*">.*?</div></div>|<h1>.*?</h1>|<h2>.*?</h2>`).FindAllString(string(orig), -1)
	if len(pieces) < 10 {
		t.Fatalf("the run's report has %d tables, tiles and headings", len(pieces))
	}
	for _, p := range pieces {
		if !strings.Contains(string(again), p) {
			t.Errorf("the re-rendered report lacks %.200q", p)
		}
	}
	for _, want := range []string{"Re-rendered from journal.json", "Error budget burn rate", "Latency distribution by phase", "api-503"} {
		if !strings.Contains(string(again), want) {
			t.Errorf("the re-rendered report lacks %q", want)
		}
	}
	if strings.Contains(string(orig), "Re-rendered") {
		t.Error("the run's own report says it was re-rendered")
	}
	checkInChromium(t, filepath.Join(out, "report.html"), "run-report.png", 7)
	checkInChromium(t, rep, "journal-report.png", 6)
}
