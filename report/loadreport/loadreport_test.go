package loadreport_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
	"github.com/relia-dev/relia/report/loadreport"
)

var t0 = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

func recorder() *outcome.Recorder {
	r, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		panic(err)
	}
	return r
}

// result is a 4-second open-model run at 100 req/s starting 250 ms into
// a bucket: "home" (ok, 5 ms) and every tenth request "pay" (503, 80 ms,
// failing its check), with 2 dropped arrivals and a late one.
func result() *load.Result {
	res := &load.Result{
		Scenario: "checkout", Model: load.Open, Seed: 7, Segments: []load.Segment{load.Whole},
		Start: t0.Add(250 * time.Millisecond), End: t0.Add(4250 * time.Millisecond), Duration: 4 * time.Second,
		Planned: 402, Dispatched: 400, Dropped: 2, LateAfter: 10 * time.Millisecond,
		Requests: recorder(), ByName: map[string]*outcome.Recorder{"home": recorder(), "pay": recorder()},
		Lag: recorder(), Checks: recorder(), ByCheck: map[string]*outcome.Recorder{"pay: status in [200]": recorder()},
	}
	for _, s := range []string{"http_req_duration:p(99)<500", "http_req_failed:rate<0.05", "checks:rate>0.95", "http_reqs:rate>90"} {
		th, err := load.ParseThresholdFlag(s)
		if err != nil {
			panic(err)
		}
		res.Thresholds = append(res.Thresholds, th)
	}
	for i := range 400 {
		at := res.Start.Add(time.Duration(i) * 10 * time.Millisecond)
		o := outcome.Outcome{Start: at, Latency: 5 * time.Millisecond, ServiceTime: 4 * time.Millisecond, Status: 200, Name: "home"}
		if i%10 == 0 {
			o.Latency, o.ServiceTime, o.Status, o.Name = 80*time.Millisecond, 79*time.Millisecond, 503, "pay"
			check := outcome.Outcome{Start: at, Class: outcome.ClassCheck}
			res.Checks.Record(check)
			res.ByCheck["pay: status in [200]"].Record(check)
		}
		o.Class = outcome.ClassifyResponse(o.Status, nil)
		res.Requests.Record(o)
		res.ByName[o.Name].Record(o)
		lag := time.Millisecond
		if i == 200 {
			lag = 30 * time.Millisecond
		}
		res.Lag.Record(outcome.Outcome{Start: at, Latency: lag})
	}
	for i := range 2 {
		d := outcome.Outcome{Start: res.Start.Add(time.Duration(2000+i) * time.Millisecond), Class: outcome.ClassDropped}
		res.Requests.Record(d)
	}
	for s := range 4 {
		res.Active = append(res.Active, load.Sample{T: t0.Add(time.Duration(s+1) * time.Second), V: 2 + s%2})
	}
	return res
}

func render(t *testing.T, p *report.Page) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func section(p *report.Page, title string) (report.Section, bool) {
	for _, s := range p.Sections {
		if s.Title == title {
			return s, true
		}
	}
	return report.Section{}, false
}

func stat(s report.Section, label string) report.Stat {
	for _, st := range s.Stats {
		if st.Label == label {
			return st
		}
	}
	return report.Stat{}
}

// TestPage: the page's figures are the load package's, thresholds carry
// their limits and values in their units, and every part is there.
func TestPage(t *testing.T) {
	t.Parallel()
	res := result()
	p := loadreport.Page(res, res.Judge())
	var titles []string
	for _, s := range p.Sections {
		titles = append(titles, s.Title)
	}
	if got := strings.Join(titles, ", "); got != "Verdict, Latency, Throughput and errors, Requests, Checks, Load generator" {
		t.Errorf("sections %s", got)
	}
	v, _ := section(p, "Verdict")
	all := res.Rows()[0]
	if st := stat(v, "Requests"); st.Value != "400" || st.Note != fmt.Sprintf("%.1f req/s", all.RPS) || st.Note != "100.0 req/s" {
		t.Errorf("requests tile %+v, want 400 at the summary's 100.0 req/s", st)
	}
	if st := stat(v, "Failed requests"); st.Value != "10.00%" {
		t.Errorf("failed requests tile %+v", st)
	}
	want := [][]string{
		{"http_req_duration p(99)<500", "< 500ms", "80.06ms", "pass"},
		{"http_req_failed rate<0.05", "< 5%", "10.00%", "FAIL"},
		{"checks rate>0.95", "> 95%", "0.00%", "FAIL"},
		{"http_reqs rate>90", "> 90/s", "100.0/s", "pass"},
	}
	rows := v.Tables[0].Rows
	for i, w := range want {
		if strings.Join(rows[i], "|") != strings.Join(w, "|") {
			t.Errorf("threshold row %d %q, want %q", i, rows[i], w)
		}
	}

	lat, _ := section(p, "Latency")
	if len(lat.Charts) != 3 || lat.Charts[0].Title != "Latency" || len(lat.Charts[0].Lines) != 1 || lat.Charts[0].Lines[0].V != 500 {
		t.Errorf("latency charts %+v, want latency with the p(99)<500 line, max, and service time", lat.Charts)
	}
	if len(lat.Distributions) != 2 || len(lat.Distributions[0].Series) != 2 || len(lat.Distributions[1].Series) != 2 {
		t.Errorf("distributions: %+v, want latency and service time, and one curve per request", lat.Distributions)
	}
	thr, _ := section(p, "Throughput and errors")
	ok, failed := thr.Charts[0].Series[0], thr.Charts[0].Series[1]
	if thr.Charts[0].Title != "Throughput" || len(ok.Points) != 5 || !ok.Points[0].T.Equal(res.Start) {
		t.Fatalf("throughput %+v, want 5 levels from the run's start", thr.Charts[0])
	}
	for i := range ok.Points {
		if sent := ok.Points[i].V + failed.Points[i].V; sent < 100-1e-9 || sent > 100+1e-9 {
			t.Errorf("level %d: %v req/s sent, want 100: the partial first and last buckets are not dips", i, sent)
		}
	}
	checks, _ := section(p, "Checks")
	if st := stat(checks, "Checks passed"); st.Value != "0.00%" || st.Status != report.StatusFail ||
		strings.Join(checks.Tables[0].Rows[0], "|") != "pay: status in [200]|40|0|40|0.00%" {
		t.Errorf("checks %+v", checks)
	}
	gen, _ := section(p, "Load generator")
	if st := stat(gen, "Sent late"); st.Value != "0.25%" || !strings.Contains(st.Note, "1 of 400") {
		t.Errorf("sent late %+v, want 1 of the 400 sent (the load package's figure)", st)
	}
	req, _ := section(p, "Requests")
	codes := req.Tables[2]
	if codes.Title != "Responses by status code" || strings.Join(codes.Rows[1], "|") != "503 Service Unavailable|40|10.00%" {
		t.Errorf("status codes %+v", codes)
	}
	out := render(t, p)
	for _, w := range []string{"<title>relia load: checkout</title>", "open model · ran 4s of 4s · seed 7", "Load generator", "p(99)&lt;500"} {
		if !strings.Contains(out, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}

// TestStressStepsArePhases: a stress test's steps are the page's phases
// and have a section with the knee.
func TestStressStepsArePhases(t *testing.T) {
	t.Parallel()
	res := result()
	res.Preset, res.StepLength, res.StepTargets = "stress", 2*time.Second, []float64{50, 100}
	p := loadreport.Page(res, res.Judge())
	if len(p.Phases) != 2 || p.Phases[0].Label != "step 1: 50" || !p.Phases[1].From.Equal(res.Start.Add(2*time.Second)) {
		t.Errorf("phases %+v", p.Phases)
	}
	s, ok := section(p, "Stress steps")
	if !ok || len(s.Tables[0].Rows) != 2 || !strings.Contains(s.Text, "Knee") {
		t.Errorf("stress section %+v", s)
	}
	if !strings.Contains(p.Subtitle, "stress preset") {
		t.Errorf("subtitle %q", p.Subtitle)
	}
}

func ExamplePage() {
	res := result()
	page := loadreport.Page(res, res.Judge())
	for _, s := range page.Sections {
		fmt.Println(s.Title)
	}
	// Output:
	// Verdict
	// Latency
	// Throughput and errors
	// Requests
	// Checks
	// Load generator
}

// TestJourneySection: a journey test's page has a Journeys section whose
// figures are the load package's rows: count, rate, success and lengths.
func TestJourneySection(t *testing.T) {
	res := result()
	res.Journeys = &load.JourneyRecorders{All: recorder(), ByJourney: map[string]*outcome.Recorder{"checkout": recorder()},
		Groups: recorder(), ByGroup: map[string]*outcome.Recorder{"::cart": recorder()}}
	for i := range 40 {
		o := outcome.Outcome{Start: res.Start.Add(time.Duration(i) * 100 * time.Millisecond), Latency: 120 * time.Millisecond}
		if i%10 == 0 {
			o.Class = outcome.ClassStatus
		}
		res.Journeys.All.Record(o)
		res.Journeys.ByJourney["checkout"].Record(o)
		g := outcome.Outcome{Start: o.Start, Latency: 30 * time.Millisecond}
		res.Journeys.Groups.Record(g)
		res.Journeys.ByGroup["::cart"].Record(g)
	}
	page := loadreport.Page(res, res.Judge())
	sec, ok := section(page, "Journeys")
	if !ok {
		t.Fatal("no Journeys section")
	}
	rows := sec.Tables[0].Rows
	if len(rows) != 3 || rows[0][0] != "checkout" || rows[0][1] != "40" || rows[0][2] != "10.0" || rows[0][3] != "90.00%" || rows[2][0] != "group ::cart" {
		t.Errorf("journey rows %v", rows)
	}
	html := render(t, page)
	if !strings.Contains(html, "Journey length distribution") || !strings.Contains(html, "group ::cart") {
		t.Error("the page lacks the journeys' distribution or groups")
	}
	var sum strings.Builder
	if err := res.WriteSummary(&sum, res.Judge()); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(sum.String(), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"checkout 40 10.0 90.00% 120.06ms", "group ::cart 40 10.0 100.00% 30.02ms"} {
		if !strings.Contains(text, want) {
			t.Errorf("the terminal summary lacks %q:\n%s", want, text)
		}
	}
}
