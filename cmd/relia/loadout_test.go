package main

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// TestLoadJUnitAndSummaryExport: --junit lists each threshold with the
// value the terminal shows, failed where the terminal says FAIL;
// --summary-export holds the results file's metrics, figure for figure;
// --trace-sample 1 puts a traceparent on every request.
func TestLoadJUnitAndSummaryExport(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var traceparents []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	file := writeFile(t, dir, "outputs.yaml", `kind: Scenario
version: relia/v1
metadata: {name: outputs}
spec:
  baseURL: `+srv.URL+`
  requests:
    - {name: get, path: /x, weight: 3}
    - {name: post, method: POST, path: /y, body: x}
  load: {rate: 100, duration: 1s, lateAfter: 1s}
  thresholds:
    "http_req_failed{method:GET}": ["rate<0.01"]
    "http_reqs{status:503}": ["count<1"]
    http_req_waiting: ["p(95)<10000"]
`)
	out, junitPath, export := filepath.Join(dir, "r.json"), filepath.Join(dir, "j.xml"), filepath.Join(dir, "s.json")
	code, stdout, stderr := runCLI(t, "load", file, "--out", out, "--junit", junitPath, "--summary-export", export, "--trace-sample", "1")
	if code != exitFailed {
		t.Fatalf("exit %d, want 1 for http_reqs{status:503}\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// The terminal's threshold lines: "  pass  REF EXPR  VALUE".
	terminal := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^  (pass|FAIL)  (\S+ \S+)  (.+)$`).FindAllStringSubmatch(stdout, -1) {
		terminal[m[2]] = m[1] + " " + m[3]
	}
	if len(terminal) != 3 {
		t.Fatalf("terminal thresholds %v in\n%s", terminal, stdout)
	}
	var report struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Cases    []struct {
				Name      string    `xml:"name,attr"`
				Failure   *struct{} `xml:"failure"`
				Error     *struct{} `xml:"error"`
				SystemOut string    `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	data, err := os.ReadFile(junitPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(data, &report); err != nil {
		t.Fatalf("junit report: %v\n%s", err, data)
	}
	if len(report.Suites) != 1 || report.Suites[0].Tests != 4 || report.Suites[0].Failures != 1 {
		t.Fatalf("junit suites %+v", report.Suites)
	}
	for _, c := range report.Suites[0].Cases[1:] {
		want, ok := terminal[c.Name]
		mark := "pass"
		if c.Failure != nil {
			mark = "FAIL"
		}
		if !ok || want != mark+" "+strings.TrimPrefix(c.SystemOut, c.Name+": ") {
			t.Errorf("junit %q: %s %q; terminal: %q", c.Name, mark, c.SystemOut, want)
		}
	}
	if g := report.Suites[0].Cases[0]; g.Error != nil || g.Failure != nil {
		t.Errorf("generator case %+v", g)
	}

	var results, summary struct {
		Metrics json.RawMessage `json:"metrics"`
		Result  string          `json:"result"`
	}
	for path, v := range map[string]any{out: &results, export: &summary} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if string(summary.Metrics) != string(results.Metrics) || summary.Result != "failed" || results.Result != "failed" {
		t.Fatalf("summary export %s metrics differ from the results file's:\n%s\n%s", summary.Result, summary.Metrics, results.Metrics)
	}
	for _, m := range []string{`"http_req_waiting":`, `"http_req_connecting":`, `"iterations":`, `"http_reqs{status:503}":`} {
		if !strings.Contains(string(summary.Metrics), m) {
			t.Errorf("summary export lacks %s", m)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(traceparents) != 100 {
		t.Fatalf("%d requests, want 100", len(traceparents))
	}
	for _, tp := range traceparents {
		if !regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`).MatchString(tp) {
			t.Fatalf("traceparent %q", tp)
		}
	}
	if code, _, stderr := runCLI(t, "load", file, "--trace-sample", "2"); code != exitBadInput || !strings.Contains(stderr, "--trace-sample 2: want a share from 0 to 1") {
		t.Fatalf("--trace-sample 2: exit %d, %s", code, stderr)
	}
}
