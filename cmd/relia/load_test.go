package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func loadServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadOneLinerExitCodes(t *testing.T) {
	t.Parallel()
	srv := loadServer(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout for passes, stderr otherwise
	}{
		// A loaded CI machine (and -race) can start a few arrivals late: this
		// case is about the exit code and the summary, so it asks for less
		// punctuality than the default 99%.
		{"open model passes", []string{srv.URL + "/x", "--rate", "200", "--duration", "500ms", "--threshold", "http_req_failed:rate<0.01", "--threshold", "arrivals_on_time:rate>=0.5"}, exitPass, "p99.9"},
		{"closed model with a header", []string{srv.URL, "--vus", "3", "--duration", "300ms", "-H", "X-Test: 1"}, exitPass, "VUs: up to 3"},
		{"threshold fails", []string{srv.URL, "--rate", "100", "--duration", "300ms", "--threshold", "http_req_duration:p(99)<0.001"}, exitFailed, "thresholds failed: http_req_duration p(99)<0.001"},
		{"setup fails", []string{writeFile(t, dir, "setup.yaml", scenarioYAML(srv.URL, "  setup: {path: /login}\n", "{path: /x}")), "--rate", "10", "--duration", "200ms"}, exitRuntime, "setup failed: request \"GET /login\": status 503"},
		{"malformed URL", []string{"http://exa mple.com/", "--rate", "10"}, exitBadInput, "malformed URL"},
		{"unreachable host", []string{"http://127.0.0.1:1/", "--rate", "10"}, exitBadInput, "host 127.0.0.1:1 is unreachable"},
		{"rate of zero", []string{srv.URL, "--rate", "0"}, exitBadInput, "give --rate"},
		{"negative rate", []string{srv.URL, "--rate", "-5"}, exitBadInput, "--rate -5: want a rate > 0"},
		{"threshold on an unknown metric", []string{srv.URL, "--rate", "10", "--threshold", "latency:p(99)<5"}, exitBadInput, "unknown metric \"latency\""},
		{"bad template", []string{writeFile(t, dir, "tmpl.yaml", scenarioYAML(srv.URL, "", "{path: '/x/{{nope}}'}"))}, exitBadInput, "tmpl.yaml:5:21: spec.requests[0].path: template at offset 5: unknown variable \"nope\""},
		{"unknown JSON path", []string{writeFile(t, dir, "path.yaml", scenarioYAML(srv.URL, "", "{path: /x, checks: [{jsonPath: 'ok'}]}"))}, exitBadInput, "jsonPath: json path \"ok\" at offset 0: must start with $"},
		{"bad segment", []string{srv.URL, "--rate", "10", "--segment", "4/4"}, exitBadInput, "segment 4/4"},
		{"header on a file", []string{writeFile(t, dir, "ok.yaml", scenarioYAML(srv.URL, "", "{path: /x}")), "-H", "A: b"}, exitBadInput, "apply to a URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append([]string{"load"}, tc.args...)...)
			where := errOut
			if tc.code == exitPass {
				where = out
			}
			if code != tc.code || !strings.Contains(where, tc.want) {
				t.Fatalf("code %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwant %q", code, tc.code, out, errOut, tc.want)
			}
		})
	}
}

func scenarioYAML(base, extra, request string) string {
	return "kind: Scenario\nversion: relia/v1\nspec:\n  baseURL: " + base + "\n" + extra + "  requests: [" + request + "]\n  load: {rate: 50, duration: 300ms, lateAfter: 1s}\n"
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadSegmentsMergeAndReports(t *testing.T) {
	t.Parallel()
	srv := loadServer(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "s.yaml", scenarioYAML(srv.URL, "", "{path: /x, checks: [{status: [200]}]}")+
		"  thresholds: {checks: [\"rate>0.99\"]}\n")
	if code, _, errOut := runCLI(t, "load", "validate", file); code != exitPass {
		t.Fatalf("validate: %d %s", code, errOut)
	}
	var parts []string
	for _, seg := range []string{"0/2", "1/2"} {
		out := filepath.Join(dir, "part"+seg[:1]+".json")
		if code, _, errOut := runCLI(t, "load", file, "--segment", seg, "--out", out); code != exitPass {
			t.Fatalf("segment %s: %d %s", seg, code, errOut)
		}
		parts = append(parts, out)
	}
	all := filepath.Join(dir, "all.json")
	html := filepath.Join(dir, "report.html")
	code, out, errOut := runCLI(t, append([]string{"load", "merge", "--out", all, "--html", html, "-o", "json"}, parts...)...)
	if code != exitPass {
		t.Fatalf("merge: %d %s", code, errOut)
	}
	var doc struct {
		Schema   string   `json:"schema"`
		Segments []string `json:"segments"`
		Planned  int      `json:"planned"`
		Requests struct {
			StatusCodes map[string]int `json:"status_codes"`
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	// 50/s for 300ms is 15 requests, split 8 and 7, merged back to 15.
	if doc.Schema != "relia/load/v1" || len(doc.Segments) != 2 || doc.Planned != 15 || doc.Requests.StatusCodes["200"] != 15 {
		t.Fatalf("merged result %+v", doc)
	}
	page, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(page), "<svg") || !strings.Contains(string(page), "checks rate&gt;0.99") {
		t.Fatalf("HTML report (%v) lacks charts or thresholds", err)
	}
	if code, _, errOut := runCLI(t, "load", "merge", parts[0], parts[0]); code != exitBadInput || !strings.Contains(errOut, "twice") {
		t.Fatalf("merging a segment twice: %d %s", code, errOut)
	}
	if code, out, _ := runCLI(t, "load", "schema"); code != exitPass || !strings.Contains(out, `"const": "Scenario"`) {
		t.Fatalf("schema: %d", code)
	}
}

func TestLoadServesLiveMetrics(t *testing.T) {
	t.Parallel()
	srv := loadServer(t)
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		// The test is about the live metrics: like the exit-code test, it
		// asks for less punctuality than a loaded CI machine can promise.
		done <- run([]string{"load", srv.URL, "--rate", "100", "--duration", "2s", "--metrics-addr", "127.0.0.1:0",
			"--threshold", "arrivals_on_time:rate>=0.5"}, io.Discard, &stderr)
	}()
	addr := regexp.MustCompile(`live metrics on (http://\S+)`)
	deadline := time.Now().Add(5 * time.Second)
	var body string
	for time.Now().Before(deadline) && !strings.Contains(body, "http_client_request_duration_seconds_bucket") {
		if m := addr.FindStringSubmatch(stderr.String()); m != nil {
			if resp, err := http.Get(m[1]); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				body = string(b)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := <-done; code != exitPass {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"http_client_request_duration_seconds_bucket", `relia_load_requests_total{class="ok"`, "relia_load_active"} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%.2000s", want, body)
		}
	}
}
