package analyze

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/report"
)

// Page renders the analysis as a self-contained HTML report.
func (a *Analysis) Page(capacity float64) *report.Page {
	p := &report.Page{
		Title:    "Call analysis",
		Subtitle: fmt.Sprintf("%s to %s, %s steps · time axes count from %s", a.From.Format(time.RFC3339), a.To.Format(time.RFC3339), a.Step, a.From.Format("2006-01-02 15:04 UTC")),
		Start:    a.From,
	}
	t := a.Total
	p.Sections = append(p.Sections, report.Section{
		Title: "Summary",
		Stats: []report.Stat{
			{Label: "Calls", Value: fmt.Sprint(t.Calls), Note: fmt.Sprintf("%.2f/s", t.RatePerSec)},
			{Label: "Error rate", Value: pct(t.ErrorRate), Note: fmt.Sprintf("%d failed, %d rejected", t.Failed, t.Rejected)},
			{Label: "p95 latency", Value: ms(t.P95MS), Note: "p99 " + ms(t.P99MS)},
			{Label: "Cost", Value: fmt.Sprintf("$%.2f", t.Cost), Note: fmt.Sprintf("%d tokens in, %d out", t.InputTokens, t.OutputTokens)},
		},
	})
	step, _ := time.ParseDuration(a.Step)
	var rate, errs, lat report.Chart
	rate = report.Chart{Title: "Calls per second by route", Unit: "req/s"}
	errs = report.Chart{Title: "Error rate by route", Unit: "%"}
	lat = report.Chart{Title: "p95 latency by route", Unit: "ms"}
	for _, rt := range a.Routes[:min(len(a.Routes), 5)] {
		var rp, ep, lp []report.Point
		for i, v := range rt.Values {
			at := rt.Calls.At(i)
			rp = append(rp, report.Point{T: at, V: v / step.Seconds()})
			ep = append(ep, report.Point{T: at, V: 100 * rt.ErrorRate[i]})
			lp = append(lp, report.Point{T: at, V: rt.P95MS[i]})
		}
		rate.Series = append(rate.Series, report.Series{Name: rt.Route, Points: rp, Step: step, Reduce: report.ReduceMean})
		errs.Series = append(errs.Series, report.Series{Name: rt.Route, Points: ep, Step: step})
		lat.Series = append(lat.Series, report.Series{Name: rt.Route, Points: lp, Step: step})
	}
	p.Sections = append(p.Sections, report.Section{Title: "Traffic", Charts: []report.Chart{rate, errs, lat}})

	fc := report.Section{Title: "Forecast", Text: "Holt-Winters with daily and weekly seasons, fitted to each route's calls per step; the band is the 95% prediction interval."}
	var notes []string
	for _, rt := range a.Routes[:min(len(a.Routes), 5)] {
		if rt.Forecast == nil {
			notes = append(notes, rt.Route+": "+rt.ForecastNote)
			continue
		}
		notes = append(notes, exceedWords(rt, capacity))
		c := report.Chart{Title: rt.Route + ": calls per second and forecast", Unit: "req/s"}
		var hist, mean, lo, hi, capPts []report.Point
		for i, v := range rt.Values {
			hist = append(hist, report.Point{T: rt.Calls.At(i), V: v / step.Seconds()})
		}
		for _, fp := range rt.Forecast.Points {
			mean = append(mean, report.Point{T: fp.T, V: fp.Mean / step.Seconds()})
			lo = append(lo, report.Point{T: fp.T, V: max(fp.Lower, 0) / step.Seconds()})
			hi = append(hi, report.Point{T: fp.T, V: fp.Upper / step.Seconds()})
		}
		c.Series = []report.Series{
			{Name: "measured", Points: hist, Step: step, Reduce: report.ReduceMean, Color: "blue"},
			{Name: "forecast", Points: mean, Step: step, Reduce: report.ReduceMean, Color: "orange"},
			{Name: "95% low", Points: lo, Step: step, Reduce: report.ReduceMin, Color: "grey"},
			{Name: "95% high", Points: hi, Step: step, Color: "grey"},
		}
		if capacity > 0 && len(hist) > 0 {
			capPts = []report.Point{{T: hist[0].T, V: capacity}, {T: rt.Forecast.Points[len(rt.Forecast.Points)-1].T, V: capacity}}
			c.Series = append(c.Series, report.Series{Name: "capacity", Points: capPts, Step: rt.Forecast.Points[len(rt.Forecast.Points)-1].T.Sub(hist[0].T), Color: "red"})
		}
		c.Windows = []report.Window{{Label: "forecast", From: rt.Forecast.Points[0].T}}
		fc.Charts = append(fc.Charts, c)
	}
	fc.Text += "\n\n" + strings.Join(notes, "\n\n")
	p.Sections = append(p.Sections, fc)

	p.Sections = append(p.Sections, report.Section{Title: "Breakdown", Tables: []report.Table{
		rowTable("By route", callstore.ByRoute, a.ByRoute),
		rowTable("By API", callstore.ByAPI, a.ByAPI),
		rowTable("By tenant", callstore.ByTenant, a.ByTenant),
		rowTable("By model", callstore.ByModel, a.ByModel),
	}})
	consumers := report.Table{Title: "Top consumers", Columns: []string{"tenant", "key", "calls", "error rate", "cost"}}
	for _, r := range a.TopConsumers {
		consumers.Rows = append(consumers.Rows, []string{r.Key.Tenant, r.Key.KeyID, fmt.Sprint(r.Calls), pct(r.ErrorRate), fmt.Sprintf("$%.4f", r.Cost)})
	}
	cost := report.Table{Title: "Tokens and cost by tenant and model", Columns: []string{"tenant", "model", "calls", "input tokens", "output tokens", "cost"}}
	for _, r := range a.Cost {
		cost.Rows = append(cost.Rows, []string{r.Key.Tenant, r.Key.Model, fmt.Sprint(r.Calls), fmt.Sprint(r.InputTokens), fmt.Sprint(r.OutputTokens), fmt.Sprintf("$%.4f", r.Cost)})
	}
	p.Sections = append(p.Sections, report.Section{Title: "Consumers and cost", Tables: []report.Table{consumers, cost}})
	if len(a.WeekOverWeek) > 0 {
		wow := report.Table{Title: "Last 7 days against the 7 before", Columns: []string{"route", "before", "now", "change", "error rate before", "now"}}
		for _, c := range a.WeekOverWeek {
			wow.Rows = append(wow.Rows, []string{c.Key.Route, fmt.Sprint(c.Previous), fmt.Sprint(c.Current), signedPct(c.Ratio), pct(c.ErrorRateBefore), pct(c.ErrorRateNow)})
		}
		p.Sections = append(p.Sections, report.Section{Title: "Week over week", Tables: []report.Table{wow}})
	}
	an := report.Table{Title: "Steps far from the seasonal baseline", Columns: []string{"route", "time", "calls", "expected", "score"}}
	for _, rt := range a.Routes {
		for _, x := range rt.Anomalies {
			an.Rows = append(an.Rows, []string{rt.Route, x.T.Format(time.RFC3339), fmt.Sprintf("%.0f", x.Value), fmt.Sprintf("%.0f", x.Expected), fmt.Sprintf("%+.1f", x.Score)})
			an.RowStatus = append(an.RowStatus, report.StatusWarn)
		}
	}
	p.Sections = append(p.Sections, report.Section{Title: "Anomalies", Text: fmt.Sprintf("Steps whose calls lie more than %d robust standard deviations from the one-step Holt-Winters prediction.", DefaultAnomalyScore), Tables: []report.Table{an}})
	return p
}

func rowTable(title string, d callstore.Dimension, rows []Row) report.Table {
	t := report.Table{Title: title, Columns: []string{string(d), "calls", "req/s", "error rate", "p50", "p95", "p99", "cost"}}
	for _, r := range rows {
		name := r.Key.Get(d)
		if name == "" {
			name = "(none)"
		}
		t.Rows = append(t.Rows, []string{name, fmt.Sprint(r.Calls), fmt.Sprintf("%.2f", r.RatePerSec), pct(r.ErrorRate), ms(r.P50MS), ms(r.P95MS), ms(r.P99MS), fmt.Sprintf("$%.4f", r.Cost)})
	}
	return t
}

func exceedWords(rt RouteTrend, capacity float64) string {
	if capacity <= 0 {
		return fmt.Sprintf("%s: trend %+.2f calls per step per step; no capacity given (--capacity) to compare with.", rt.Route, rt.Forecast.Trend)
	}
	switch {
	case rt.ExpectedToExceed != nil:
		return fmt.Sprintf("%s: expected to exceed %.4g req/s at %s (possibly from %s).", rt.Route, capacity, rt.ExpectedToExceed.Format(time.RFC3339), rt.MayExceed.Format(time.RFC3339))
	case rt.MayExceed != nil:
		return fmt.Sprintf("%s: not expected to exceed %.4g req/s within the forecast, but may from %s (95%% upper bound).", rt.Route, capacity, rt.MayExceed.Format(time.RFC3339))
	}
	return fmt.Sprintf("%s: not expected to exceed %.4g req/s within the forecast.", rt.Route, capacity)
}

func pct(r float64) string       { return fmt.Sprintf("%.2f%%", 100*r) }
func signedPct(r float64) string { return fmt.Sprintf("%+.1f%%", 100*r) }
func ms(v float64) string        { return fmt.Sprintf("%.1fms", v) }

// WriteText writes the analysis for a terminal: the totals, the routes,
// forecasts and anomalies.
func (a *Analysis) WriteText(w io.Writer, capacity float64) error {
	t := a.Total
	fmt.Fprintf(w, "calls %s to %s: %d (%.2f/s), error rate %s, p50 %s p95 %s p99 %s, cost $%.4f\n\n",
		a.From.Format(time.RFC3339), a.To.Format(time.RFC3339), t.Calls, t.RatePerSec, pct(t.ErrorRate), ms(t.P50MS), ms(t.P95MS), ms(t.P99MS), t.Cost)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, tbl := range []struct {
		d    callstore.Dimension
		rows []Row
	}{{callstore.ByRoute, a.ByRoute}, {callstore.ByTenant, a.ByTenant}, {callstore.ByModel, a.ByModel}} {
		if len(tbl.rows) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\tcalls\treq/s\terrors\tp50\tp95\tp99\tcost\n", strings.ToUpper(string(tbl.d)))
		for _, r := range tbl.rows {
			name := r.Key.Get(tbl.d)
			if name == "" {
				name = "(none)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\t%s\t%s\t$%.4f\n", name, r.Calls, r.RatePerSec, pct(r.ErrorRate), ms(r.P50MS), ms(r.P95MS), ms(r.P99MS), r.Cost)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, c := range a.WeekOverWeek {
		fmt.Fprintf(w, "week over week: %s %d -> %d (%s)\n", c.Key.Route, c.Previous, c.Current, signedPct(c.Ratio))
	}
	for _, rt := range a.Routes {
		if rt.Forecast == nil {
			fmt.Fprintf(w, "forecast: %s\n", rt.ForecastNote)
		} else {
			fmt.Fprintf(w, "forecast: %s\n", exceedWords(rt, capacity))
		}
		for _, x := range rt.Anomalies {
			fmt.Fprintf(w, "anomaly: %s at %s: %.0f calls, %.0f expected (score %+.1f)\n", rt.Route, x.T.Format(time.RFC3339), x.Value, x.Expected, x.Score)
		}
	}
	return nil
}
