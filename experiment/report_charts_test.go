package experiment

import (
	"bytes"
	"html"
	"math"
	"strings"
	"testing"

	"github.com/relia-dev/relia/report"
)

// chartOf finds a chart of a page by title.
func chartOf(t *testing.T, p *report.Page, title string) report.Chart {
	t.Helper()
	for _, s := range p.Sections {
		for _, c := range s.Charts {
			if c.Title == title {
				return c
			}
		}
	}
	t.Fatalf("no chart %q", title)
	return report.Chart{}
}

// TestReportPageFromRecorderAndJournal: the run's report, drawn from its
// recorder and again from its journal alone, ends its budget charts on
// the verdict's budget spent, marks the phases, shades the fault, and
// has the same tables; the journal's page says what it lacks.
func TestReportPageFromRecorderAndJournal(t *testing.T) {
	t.Parallel()
	p := judgedPlan(t)
	rec := record(t, run(60, 20, 47, traffic{n: 10, failures: 5, latency: 20 * 1e6}))
	tl := PlannedTimeline(p, t0)
	v, err := Judge(p, rec, tl)
	if err != nil {
		t.Fatal(err)
	}
	sc := Score(p, v)
	j := NewJournal(p, rec, tl, v, &sc, v.ExitCode)
	var buf bytes.Buffer
	if err := j.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeJournal(&buf)
	if err != nil {
		t.Fatal(err)
	}
	live, again := ReportPage(j, rec), ReportPage(decoded, nil)

	for _, c := range []struct {
		name string
		page *report.Page
	}{{"live", live}, {"journal", again}} {
		if len(c.page.Phases) != 3 || c.page.Phases[1].Label != "degraded" {
			t.Errorf("%s: phases %+v", c.name, c.page.Phases)
		}
		spent := chartOf(t, c.page, "Error budget spent")
		for i, s := range spent.Series {
			last := s.Points[len(s.Points)-1]
			want := 100 * v.Run.SLOs[i].BudgetSpent
			if !last.T.Equal(tl.End) || math.Abs(last.V-want) > 1e-9*math.Max(1, want) {
				t.Errorf("%s: %s budget spent ends at %v with %v%%, want the verdict's %v%% at the end", c.name, s.Name, last.T, last.V, want)
			}
		}
		burn := chartOf(t, c.page, "Error budget burn rate")
		if len(burn.Windows) < 2 || burn.Windows[0].Label != "pay-errors" {
			t.Errorf("%s: burn chart windows %+v, want the fault and the alerts that fired", c.name, burn.Windows)
		}
		if w := chartOf(t, c.page, "Throughput").Windows; len(w) != 1 || w[0].Label != "pay-errors" {
			t.Errorf("%s: throughput windows %+v", c.name, w)
		}
	}
	if n := len(chartOf(t, live, "Latency").Series); n != 3 {
		t.Errorf("live latency has %d series, want p50, p90, p99", n)
	}
	if n := len(chartOf(t, again, "Latency").Series); n != 2 {
		t.Errorf("the journal's latency has %d series, want p50 and p99", n)
	}
	// The live burn rate is per second; the journal's per phase.
	if a, b := len(chartOf(t, live, "Error budget burn rate").Series[0].Points), len(chartOf(t, again, "Error budget burn rate").Series[0].Points); a != 60 || b != 3 {
		t.Errorf("burn rate points: %d live, %d from the journal; want 60 and 3", a, b)
	}

	var a, b bytes.Buffer
	if err := live.WriteHTML(&a); err != nil {
		t.Fatal(err)
	}
	if err := again.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range live.Sections {
		for _, tb := range s.Tables {
			for _, row := range tb.Rows {
				if cell := html.EscapeString(row[0]); !strings.Contains(b.String(), ">"+cell+"<") {
					t.Errorf("the journal's page lacks the row %q of %q", row, tb.Title)
				}
			}
		}
	}
	if !strings.Contains(b.String(), "Re-rendered from journal.json") || strings.Contains(a.String(), "Re-rendered") {
		t.Error("only the journal's page says it was re-rendered")
	}
	// Thresholds carry their units.
	if !strings.Contains(a.String(), "<td>http_req_failed:rate&lt;0.6</td><td>&lt; 60%</td><td>50.00%</td>") {
		t.Error("the threshold table lacks the limit and value in their units")
	}
}

// TestStatsPercentiles: the journal's percentiles make an ascending
// curve that ends on the max.
func TestStatsPercentiles(t *testing.T) {
	t.Parallel()
	s := statsPercentiles("x", Stats{Requests: 110, Dropped: 10, P50: 1e6, P90: 2e6, P95: 3e6, P99: 4e6, P999: 5e6, Max: 6e6})
	// 100 sent: the 100th (the max) sits at 0.99, where HdrHistogram
	// draws it; p99 and p99.9 have no rank of their own before it.
	if len(s.Points) != 4 || s.Points[3].P != 0.99 || s.Points[3].V != 6 || s.Points[2].P != 0.95 {
		t.Errorf("points %+v", s.Points)
	}
	if s := statsPercentiles("none", Stats{Requests: 3, Dropped: 3}); len(s.Points) != 0 {
		t.Errorf("nothing sent gave %+v", s.Points)
	}
}
