package capacity

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/relia-dev/relia/report"
)

// ReportInput is what a capacity report shows; any part may be nil.
type ReportInput struct {
	Title       string
	Measurement *Measurement
	Plan        *Plan
	// Behavior explains the HPA's behaviour chosen from the spike.
	Behavior   string
	Assessment *Assessment
	Proved     *Proved
	// TrafficStart is the time the simulated curve's offset 0 stands for
	// (a recorded day's midnight, a forecast's first hour); zero when the
	// curve has none (a file, a spike).
	TrafficStart time.Time
}

// Page builds the capacity report: the measurement's steps with the USL
// model and the knee, the plan's arithmetic, the simulation's replicas,
// traffic, latency and SLO breaches, and the proved run beside the
// prediction. The USL curve is drawn against concurrency with the
// measured steps as dots and the knee marked; the measurement is also
// drawn along its timeline (each step a shaded band labelled with its
// concurrency), and the table beside it gives the same figures by
// concurrency. Every section's time axis is the elapsed time from the
// start of its own run.
func (in ReportInput) Page() *report.Page {
	// Each run (the measurement, the simulation, the proved run) is drawn
	// from its own start, which the page's one time axis calls the start
	// of the proved run, or else of the simulated curve when it is dated,
	// or else of the measurement.
	reportStart := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	switch {
	case in.Proved != nil:
		reportStart = in.Proved.Start
	case in.Assessment != nil && !in.TrafficStart.IsZero():
		reportStart = in.TrafficStart
	case in.Measurement != nil && len(in.Measurement.Steps) > 0:
		reportStart = in.Measurement.Steps[0].From
	}
	p := &report.Page{Title: in.Title, Start: reportStart}
	if p.Title == "" {
		p.Title = "Capacity"
	}
	if s := in.verdict(); len(s.Stats) > 0 {
		p.Sections = append(p.Sections, s)
	}
	if m := in.Measurement; m != nil {
		p.Sections = append(p.Sections, measurementSection(m, reportStart))
	}
	if pl := in.Plan; pl != nil {
		text := strings.Join(pl.Steps, "\n")
		if in.Behavior != "" {
			text += "\n\nScaling behaviour: " + in.Behavior
		}
		p.Sections = append(p.Sections, report.Section{Title: "Plan", Text: text, Tables: []report.Table{{
			Columns: []string{"", "req/s", "replicas"},
			Rows: [][]string{
				{"per replica (target)", fmtNum(pl.PerReplica), "1"},
				{"base", fmtNum(pl.Input.Base), fmt.Sprint(pl.MinReplicas)},
				{"peak with headroom", fmtNum(pl.Input.Peak * (1 + pl.Input.Headroom)), fmt.Sprint(pl.MaxReplicas)},
			},
		}}})
	}
	if a := in.Assessment; a != nil {
		p.Sections = append(p.Sections, simulationSection(a, in.Proved, reportStart))
	}
	return p
}

func (in ReportInput) verdict() report.Section {
	s := report.Section{Title: "Verdict"}
	var text []string
	if m := in.Measurement; m != nil {
		status := report.StatusFail
		val := "none"
		if m.KneeStep() != nil {
			status, val = report.StatusPass, fmtNum(m.KneePerInstance)+" req/s"
		}
		s.Stats = append(s.Stats, report.Stat{Label: "Knee per instance", Value: val, Status: status})
		if m.Fit != nil {
			st := report.StatusPass
			if m.Fit.Poor {
				st = report.StatusWarn
			}
			s.Stats = append(s.Stats, report.Stat{Label: "USL fit R²", Value: fmt.Sprintf("%.3f", m.Fit.R2), Note: fmt.Sprintf("leave-one-out %.1f%%", 100*m.Fit.LOOError), Status: st})
		}
		text = append(text, m.Verdict())
	}
	if pl := in.Plan; pl != nil {
		s.Stats = append(s.Stats, report.Stat{Label: "Replicas", Value: fmt.Sprintf("%d–%d", pl.MinReplicas, pl.MaxReplicas), Note: fmtNum(pl.PerReplica) + " req/s each"})
	}
	if a := in.Assessment; a != nil {
		st := report.StatusPass
		if a.Breached() {
			st = report.StatusFail
		}
		s.Stats = append(s.Stats, report.Stat{Label: "Predicted breach", Value: fmtDur(a.TotalBreach()), Status: st})
		text = append(text, upperFirst(a.Verdict)+".")
	}
	if pr := in.Proved; pr != nil {
		st := report.StatusPass
		if pr.TotalBreach() > 0 {
			st = report.StatusFail
		}
		s.Stats = append(s.Stats, report.Stat{Label: "Measured breach", Value: fmtDur(pr.TotalBreach()), Note: "in the proved run", Status: st})
	}
	s.Text = strings.Join(text, "\n\n")
	return s
}

// uslChart is throughput per instance by concurrency: each step measured,
// the knee, and the fitted USL curve to a quarter past the highest step
// (or past its peak, where that comes first).
func uslChart(m *Measurement) report.XYChart {
	c := report.XYChart{Title: "Throughput per instance by concurrency", XLabel: "concurrency", Unit: "req/s",
		Note: "dots: the steps as measured; line: the USL fitted to them; the knee is the highest step that met every SLO."}
	measured := report.XYSeries{Name: "measured", Dots: true}
	knee := report.XYSeries{Name: "knee", Dots: true, Color: "green"}
	maxN := 0.0
	for i, st := range m.Steps {
		pt := report.XYPoint{X: st.Concurrency, Y: st.Throughput / float64(m.Instances)}
		measured.Points = append(measured.Points, pt)
		if i == m.Knee {
			knee.Points = append(knee.Points, pt)
		}
		maxN = math.Max(maxN, st.Concurrency)
	}
	slices.SortFunc(measured.Points, func(a, b report.XYPoint) int { return cmp.Compare(a.X, b.X) })
	c.Series = append(c.Series, measured)
	if m.Fit != nil {
		model := report.XYSeries{Name: "USL model", Color: "orange"}
		upTo := 1.25 * maxN
		const samples = 120
		for i := 0; i <= samples; i++ {
			n := upTo * float64(i) / samples
			model.Points = append(model.Points, report.XYPoint{X: n, Y: m.Fit.Model.Throughput(n)})
		}
		c.Series = append(c.Series, model)
	}
	if len(knee.Points) > 0 {
		c.Series = append(c.Series, knee)
	}
	return c
}

// measurementSection draws the steps, the model and the knee.
func measurementSection(m *Measurement, reportStart time.Time) report.Section {
	s := report.Section{Title: "Scalability"}
	if len(m.Steps) == 0 {
		return s
	}
	t0 := m.Steps[0].From
	at := func(t time.Time) time.Time { return reportStart.Add(t.Sub(t0)) }
	measured := report.Series{Name: "measured", Step: time.Second, Reduce: report.ReduceMean}
	model := report.Series{Name: "USL model", Step: time.Second, Color: "orange"}
	p99 := report.Series{Name: "p99", Step: time.Second}
	modelR := report.Series{Name: "USL model (mean)", Step: time.Second, Color: "orange"}
	var windows []report.Window
	var rows [][]string
	var status []string
	for i, st := range m.Steps {
		label := "N=" + fmtNum(st.Concurrency)
		if i == m.Knee {
			label += " (knee)"
		}
		windows = append(windows, report.Window{Label: label, From: at(st.From), To: at(st.To)})
		for t := st.From; t.Before(st.To); t = t.Add(time.Second) {
			if m.Recorder != nil {
				w := m.Recorder.Window(t, t.Add(time.Second))
				measured.Points = append(measured.Points, report.Point{T: at(t), V: float64(w.Latency.Count()) / float64(m.Instances)})
				p99.Points = append(p99.Points, report.Point{T: at(t), V: ms(w.Latency.Quantile(0.99))})
			}
			if m.Fit != nil {
				model.Points = append(model.Points, report.Point{T: at(t), V: m.Fit.Model.Throughput(st.Concurrency)})
				modelR.Points = append(modelR.Points, report.Point{T: at(t), V: 1000 * m.Fit.Model.Latency(st.Concurrency)})
			}
		}
		pred := ""
		if m.Fit != nil {
			pred = fmtNum(m.Fit.Model.Throughput(st.Concurrency))
		}
		little := "—"
		if st.LittleChecked {
			little = fmt.Sprintf("%.2f (%+.1f%%)", st.Little, 100*st.LittleError)
		}
		row := []string{fmtNum(st.Concurrency), fmtNum(st.Throughput / float64(m.Instances)), pred, fmtDur(st.P50), fmtDur(st.P99), little, metWord(st.Met)}
		rows = append(rows, row)
		switch {
		case i == m.Knee:
			status = append(status, report.StatusPass)
		case !st.Met:
			status = append(status, report.StatusFail)
		default:
			status = append(status, "")
		}
	}
	s.Text = m.Verdict()
	if m.Fit != nil {
		s.Text += "\n\nUSL fit X(N) = λN / (1 + σ(N−1) + κN(N−1)): " + m.Fit.Parameters() + "."
	}
	s.Text += "\n\nThe first two charts follow the measurement in time: each band is one step, labelled with its concurrency. The third is the USL curve against concurrency, with the measured steps as dots and the knee."
	s.XYCharts = []report.XYChart{uslChart(m)}
	s.Charts = []report.Chart{
		{Title: "Throughput per instance by step", Unit: "req/s", Series: nonEmpty(measured, model), Windows: windows},
		{Title: "Latency by step", Unit: "ms", Series: nonEmpty(p99, modelR), Windows: windows},
	}
	s.Tables = []report.Table{{Title: "Steps", Columns: []string{"concurrency", "req/s per instance", "USL req/s", "p50", "p99", "X·R (Little)", "SLOs"}, Rows: rows, RowStatus: status}}
	if f := m.Fit; f != nil && len(f.LeaveOneOut) > 0 {
		var loo [][]string
		for _, pr := range f.LeaveOneOut {
			loo = append(loo, []string{fmtNum(pr.N), fmtNum(pr.X), fmtNum(pr.Predicted), fmt.Sprintf("%+.1f%%", 100*pr.Error)})
		}
		s.Tables = append(s.Tables, report.Table{Title: "Each step predicted by the fit of the others", Columns: []string{"concurrency", "measured", "predicted", "error"}, Rows: loo})
	}
	return s
}

// simulationSection draws the simulation, and the proved run beside it.
func simulationSection(a *Assessment, pr *Proved, reportStart time.Time) report.Section {
	s := report.Section{Title: "Simulation", Text: upperFirst(a.Verdict) + ".\n\nThe charts run from the start of the traffic curve."}
	at := func(d time.Duration) time.Time { return reportStart.Add(d) }
	replicas := report.Series{Name: "replicas (simulated)", Step: time.Second}
	ready := report.Series{Name: "ready (simulated)", Step: time.Second, Reduce: report.ReduceMin}
	offered := report.Series{Name: "offered", Step: time.Second, Reduce: report.ReduceMean}
	served := report.Series{Name: "served", Step: time.Second, Reduce: report.ReduceMean}
	failed := report.Series{Name: "failed", Step: time.Second, Color: "red"}
	lat := report.Series{Name: "predicted mean", Step: time.Second}
	maxLat := report.Series{Name: "predicted max", Step: time.Second}
	util := report.Series{Name: "utilisation", Step: time.Second, Reduce: report.ReduceMean}
	for _, sec := range a.Seconds {
		t := at(sec.At)
		replicas.Points = append(replicas.Points, report.Point{T: t, V: float64(sec.Replicas)})
		ready.Points = append(ready.Points, report.Point{T: t, V: float64(sec.Ready)})
		offered.Points = append(offered.Points, report.Point{T: t, V: sec.Offered})
		served.Points = append(served.Points, report.Point{T: t, V: sec.Served})
		failed.Points = append(failed.Points, report.Point{T: t, V: sec.Failed})
		lat.Points = append(lat.Points, report.Point{T: t, V: ms(sec.Latency)})
		maxLat.Points = append(maxLat.Points, report.Point{T: t, V: ms(sec.MaxLatency)})
		util.Points = append(util.Points, report.Point{T: t, V: 100 * sec.Utilisation})
	}
	var windows []report.Window
	for _, b := range a.Breaches {
		windows = append(windows, report.Window{Label: b.SLO + " breached (simulated)", From: at(b.From), To: at(b.To)})
	}
	replicaChart := report.Chart{Title: "Replicas", Series: []report.Series{replicas, ready}, Windows: windows}
	latencyChart := report.Chart{Title: "Latency", Unit: "ms", Series: []report.Series{lat, maxLat}, Windows: windows}
	if pr != nil {
		var pReps, pReady, pP99 report.Series
		pReps = report.Series{Name: "replicas (proved)", Step: time.Second, Color: "purple"}
		pReady = report.Series{Name: "ready (proved)", Step: time.Second, Color: "brown", Reduce: report.ReduceMin}
		pP99 = report.Series{Name: "proved p99", Step: time.Second, Color: "purple"}
		for _, sec := range pr.Seconds {
			t := at(sec.At)
			pReps.Points = append(pReps.Points, report.Point{T: t, V: float64(sec.Replicas)})
			pReady.Points = append(pReady.Points, report.Point{T: t, V: float64(sec.Ready)})
			if sec.Requests > 0 {
				pP99.Points = append(pP99.Points, report.Point{T: t, V: ms(sec.P99)})
			} else {
				pP99.Points = append(pP99.Points, report.Point{T: t, V: math.NaN()})
			}
		}
		replicaChart.Series = append(replicaChart.Series, pReps, pReady)
		latencyChart.Series = append(latencyChart.Series, pP99)
		for _, b := range pr.Breaches {
			w := report.Window{Label: b.SLO + " breached (proved)", From: at(b.From), To: at(b.To)}
			replicaChart.Windows = append(replicaChart.Windows, w)
			latencyChart.Windows = append(latencyChart.Windows, w)
		}
		s.Text += fmt.Sprintf("\n\nThe proved run breached its SLOs for %s; the simulation predicted %s.", fmtDur(pr.TotalBreach()), fmtDur(a.TotalBreach()))
	}
	s.Charts = []report.Chart{
		replicaChart,
		{Title: "Requests", Unit: "req/s", Series: []report.Series{offered, served, failed}, Windows: windows},
		latencyChart,
		{Title: "Utilisation of the ready replicas", Unit: "%", Series: []report.Series{util}, Windows: windows},
	}
	var rows [][]string
	for _, e := range a.Events {
		rows = append(rows, []string{fmtDur(e.At), fmt.Sprintf("%d → %d", e.From, e.To), e.Reason, fmtNum(e.Observed)})
	}
	s.Tables = []report.Table{{Title: "Autoscaler decisions (simulated)", Columns: []string{"at", "replicas", "reason", "req/s seen"}, Rows: rows}}
	if pr != nil && pr.Record != nil {
		var prow [][]string
		for _, e := range pr.Record.Events {
			prow = append(prow, []string{fmtDur(e.At.Sub(pr.Start)), fmt.Sprintf("%d → %d", e.From, e.To), e.Reason, fmtNum(math.Round(e.Observed*10) / 10)})
		}
		s.Tables = append(s.Tables, report.Table{Title: "Autoscaler decisions (proved)", Columns: []string{"at", "replicas", "reason", "req/s seen"}, Rows: prow})
	}
	return s
}

func nonEmpty(ss ...report.Series) []report.Series {
	var out []report.Series
	for _, s := range ss {
		if len(s.Points) > 0 {
			out = append(out, s)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func metWord(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}
