package experiment

import (
	"math"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

// The charts of a run's report come from its recorder during the run, or
// from its journal when `relia report journal.json` re-renders it. The
// journal keeps less than the recorder; journalDiffers says what the
// page lacks then.
const journalDiffers = "Re-rendered from journal.json, which keeps less than the run's recorder: latency over time has p50 and p99 " +
	"only (no p90, no max chart); the latency distributions are drawn through each phase's p50, p90, p95, p99, p99.9 and max " +
	"rather than the full histograms; the error budget is charted phase by phase rather than second by second; and an llm load's time to first token and goodput are not charted. " +
	"Every figure and table is the journal's and equals the run's report."

// runCharts are the time charts of the "Over time" section, and the
// budget charts, from the recorder or (rec nil) from the journal.
func runCharts(j *Journal, rec *outcome.Recorder) (traffic, budget []report.Chart) {
	if rec != nil {
		traffic = report.RecorderCharts(rec, j.Start, j.End)
	} else {
		traffic = report.BucketCharts(journalBuckets(j), journalWidth(j), j.Start, j.End)
	}
	for i := range traffic {
		if traffic[i].Title == "Throughput" {
			traffic[i].Note = report.RecorderNote
		}
	}
	return traffic, report.BudgetCharts(budgetSeries(j, rec))
}

// faultWindows are the faults that started, one colour each.
func faultWindows(j *Journal) []report.Window {
	var windows []report.Window
	for _, f := range j.Faults {
		if !f.Start.IsZero() {
			windows = append(windows, report.Window{Label: f.Name, From: f.Start, To: f.End})
		}
	}
	return windows
}

// phaseWindows are the phases as they ran, marked on every chart.
func phaseWindows(j *Journal) []report.Window {
	var out []report.Window
	for _, ph := range j.Phases {
		out = append(out, report.Window{Label: ph.Name, From: ph.Start, To: ph.End})
	}
	return out
}

// journalWidth is the bucket width of the journal's series: the smallest
// spacing of its samples (one second when it cannot tell).
func journalWidth(j *Journal) time.Duration {
	width := time.Duration(0)
	for i := 1; i < len(j.Series); i++ {
		if d := j.Series[i].Start.Sub(j.Series[i-1].Start); d > 0 && (width == 0 || d < width) {
			width = d
		}
	}
	if width == 0 {
		width = time.Second
	}
	return width
}

// journalBuckets turns the journal's samples into chart buckets.
func journalBuckets(j *Journal) []report.Bucket {
	out := make([]report.Bucket, 0, len(j.Series))
	for _, s := range j.Series {
		b := report.Bucket{From: s.Start, P50: math.NaN(), P90: math.NaN(), P99: math.NaN(), Max: math.NaN()}
		for name, n := range s.Classes {
			if c, err := outcome.ParseClass(name); err == nil {
				b.ByClass[c] = n
			}
		}
		if s.Requests-b.ByClass[outcome.ClassDropped] > 0 {
			b.P50, b.P99 = s.P50, s.P99
		}
		out = append(out, b)
	}
	return out
}

// budgetSeries are the SLOs' events span by span: per recorder bucket,
// clipped to the run, or per phase from the journal's verdict.
func budgetSeries(j *Journal, rec *outcome.Recorder) []report.SLOSeries {
	v, p := j.Verdict, j.Plan
	if v == nil || p == nil {
		return nil
	}
	out := make([]report.SLOSeries, len(p.SLOs))
	for i, s := range p.SLOs {
		out[i] = report.SLOSeries{ID: s.ID, Objective: s.Objective, Period: sloPeriod(s, v.Run, i)}
		if i < len(v.Run.SLOs) {
			for _, a := range v.Run.SLOs[i].Alerts {
				for _, ep := range a.Episodes {
					if !ep.Fired.IsZero() {
						out[i].Alerts = append(out[i].Alerts, report.Window{Label: s.ID + ": " + a.Name + " firing", From: ep.Fired, To: ep.Resolved, Color: "red"})
					}
				}
			}
		}
	}
	if rec != nil {
		width := rec.Options().BucketWidth
		for _, sec := range collect(p, rec, j.Start, j.End) {
			from, to := sec.start, sec.start.Add(width)
			from, to = later(from, j.Start), earliest(to, j.End)
			for i := range out {
				out[i].Spans = append(out[i].Spans, report.SLOSpan{From: from, To: to, Good: sec.sloGood[i], Total: sec.sloTotal[i]})
			}
		}
		return out
	}
	for _, pv := range v.Phases {
		for i := range out {
			if i < len(pv.SLOs) {
				e := pv.SLOs[i]
				out[i].Spans = append(out[i].Spans, report.SLOSpan{From: pv.From, To: pv.To, Good: e.Good, Total: e.Total})
			}
		}
	}
	return out
}

// sloPeriod is the SLO's period: from its spec in a live run, or, since
// a journal keeps no spec, from the run's budget spent and burn rate,
// which the period relates (spent = burn x length / period).
func sloPeriod(s PlannedSLO, run PhaseVerdict, i int) time.Duration {
	if s.SLO != nil {
		return s.SLO.Period()
	}
	if i < len(run.SLOs) {
		if e := run.SLOs[i]; e.BudgetSpent > 0 && e.BurnRate > 0 {
			return time.Duration(math.Round(e.BurnRate * float64(run.To.Sub(run.From)) / e.BudgetSpent))
		}
	}
	return 30 * 24 * time.Hour // nothing was spent: any period charts zero
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// phaseColors are the colours of the phases' curves in the distribution.
var phaseColors = []string{"blue", "orange", "purple", "teal", "pink", "brown", "olive", "navy"}

// distribution is the latency distribution of each phase: the full
// histograms from the recorder, or the journal's percentiles.
func distribution(j *Journal, rec *outcome.Recorder) report.PercentileChart {
	var curves []report.PercentileSeries
	for i, ph := range j.Phases {
		var s report.PercentileSeries
		if rec != nil {
			s = report.HistogramPercentiles(ph.Name, rec.Window(alignDown(ph.Start, rec.Options().BucketWidth), ph.End).Latency)
		} else if j.Verdict != nil {
			for _, pv := range j.Verdict.Phases {
				if pv.Name == ph.Name {
					s = statsPercentiles(ph.Name, pv.Stats)
				}
			}
		}
		s.Name, s.Color = ph.Name, phaseColors[i%len(phaseColors)]
		if len(s.Points) > 0 {
			curves = append(curves, s)
		}
	}
	c := report.LatencyDistribution("Latency distribution by phase", curves...)
	if rec == nil {
		c.Note = "Drawn through each phase's p50, p90, p95, p99, p99.9 and max as the journal keeps them. " + c.Note
	}
	return c
}

// statsPercentiles is the curve through a span's percentiles, with the
// maximum at 1-1/n for n requests sent, as HistogramPercentiles puts it.
func statsPercentiles(name string, st Stats) report.PercentileSeries {
	s := report.PercentileSeries{Name: name}
	sent := st.Requests - st.Dropped
	if sent <= 0 {
		return s
	}
	last := 1 - 1/float64(sent)
	for _, q := range []struct {
		p float64
		d time.Duration
	}{{0.5, st.P50}, {0.9, st.P90}, {0.95, st.P95}, {0.99, st.P99}, {0.999, st.P999}} {
		if q.p < last {
			s.Points = append(s.Points, report.PercentilePoint{P: q.p, V: ms(q.d)})
		}
	}
	s.Points = append(s.Points, report.PercentilePoint{P: last, V: ms(st.Max)})
	return s
}

// thresholdTable is every threshold over the run and its phases, with
// its limit and observed value in the metric's unit, as the terminal
// summary and the journal write them. In an inconclusive run a miss is
// shown as not judged.
func thresholdTable(v *Verdict) (report.Table, bool) {
	t := report.Table{Title: "Thresholds", Columns: []string{"span", "threshold", "limit", "observed", "result"}}
	for _, pv := range append([]PhaseVerdict{v.Run}, v.Phases...) {
		for _, tr := range pv.Thresholds {
			limit := ""
			if th, err := load.ParseThresholdFlag(tr.Threshold); err == nil {
				limit = string(th.Op) + " " + load.FormatLimit(th)
			}
			st := passStatus(tr.Passed)
			if !tr.Passed && v.Inconclusive {
				st = report.StatusWarn
			}
			t.Rows = append(t.Rows, []string{pv.Name, tr.Threshold, limit, tr.Observed, judged(tr.Passed, v)})
			t.RowStatus = append(t.RowStatus, st)
		}
	}
	return t, len(t.Rows) > 0
}
