package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunJUnit: relia run --junit writes the verdict for CI: the SLO the
// broken phase breaks fails with the SLI the terminal shows.
func TestRunJUnit(t *testing.T) {
	t.Parallel()
	_, path := runFixture(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(data), "duration: 10s", "duration: 2s", 1)
	if err := os.WriteFile(path, []byte(short), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "junit.xml")
	code, stdout, stderr := runJudged(t, "run", path, "--out-dir", filepath.Join(dir, "out"), "--junit", report)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name      string    `xml:"name,attr"`
				Failure   *struct{} `xml:"failure"`
				SystemOut string    `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if len(doc.Suites) != 1 || doc.Suites[0].Name != "cli-run" || doc.Suites[0].Failures != 1 {
		t.Fatalf("suites %+v\n%s", doc.Suites, raw)
	}
	// The terminal: "  api-availability  99%  50.000%  ...  FAIL".
	m := regexp.MustCompile(`(?m)^  api-availability\s+(\S+)\s+(\S+)\s+(\S+)\s+FAIL$`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no failed SLO line in\n%s", stdout)
	}
	var found bool
	for _, c := range doc.Suites[0].Cases {
		if c.Name == "slo api-availability" {
			found = true
			want := "SLI " + m[2] + ", objective " + m[1] + ", budget spent " + m[3]
			if c.Failure == nil || c.SystemOut != want {
				t.Errorf("junit %q: failure %v, %q; terminal says %q", c.Name, c.Failure != nil, c.SystemOut, want)
			}
		}
	}
	if !found {
		t.Fatalf("no SLO case in\n%s", raw)
	}
}
