package analyze

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/relia-dev/relia/callstore"
)

// Schema names the analysis' JSON format.
const Schema = "relia/analysis/v1"

// Options say what to analyse.
type Options struct {
	// From and To bound the range, rounded to whole hours.
	From, To time.Time
	// Step is the width of the series' buckets: an hour (the default), a
	// day or a week.
	Step time.Duration
	// Route, API, Tenant and Model narrow the analysis to matching calls.
	Route, API, Tenant, Model string
	// Capacity is the rate, in calls per second, a route is compared
	// with: the forecast says when it is expected to pass it. 0: none.
	Capacity float64
	// Horizon is how far ahead to forecast; a week by default.
	Horizon time.Duration
	// Top is how many consumers, routes in charts and anomalies to list;
	// 10 by default.
	Top int
}

// Analysis is what `relia analyze` reports about a range of calls.
type Analysis struct {
	Schema string    `json:"schema"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Step   string    `json:"step"`
	// Total sums every call in the range.
	Total Row `json:"total"`
	// ByRoute, ByAPI, ByTenant and ByModel break the range down, busiest
	// first.
	ByRoute  []Row `json:"by_route"`
	ByAPI    []Row `json:"by_api"`
	ByTenant []Row `json:"by_tenant"`
	ByModel  []Row `json:"by_model"`
	// TopConsumers are the busiest tenant and key pairs.
	TopConsumers []Row `json:"top_consumers"`
	// Cost is tokens and cost by tenant and model, costliest first.
	Cost []Row `json:"cost"`
	// WeekOverWeek compares each route's last seven days of the range
	// with the seven before.
	WeekOverWeek []Change `json:"week_over_week"`
	// Routes are each route's series, anomalies and forecast.
	Routes []RouteTrend `json:"routes"`
}

// Row is the figures of one group over the range. Percentiles come from
// the merged rollups' histograms, so they are exact to the histogram's
// precision, not averages of percentiles.
type Row struct {
	Key          callstore.Key `json:"key"`
	Calls        int64         `json:"calls"`
	RatePerSec   float64       `json:"rate_per_sec"`
	Failed       int64         `json:"failed"`
	ErrorRate    float64       `json:"error_rate"`
	Rejected     int64         `json:"rejected"`
	P50MS        float64       `json:"p50_ms"`
	P95MS        float64       `json:"p95_ms"`
	P99MS        float64       `json:"p99_ms"`
	InputTokens  int64         `json:"input_tokens"`
	OutputTokens int64         `json:"output_tokens"`
	Cost         float64       `json:"cost_usd"`
}

// Change compares a group's calls over two equal periods.
type Change struct {
	Key      callstore.Key `json:"key"`
	Previous int64         `json:"previous"`
	Current  int64         `json:"current"`
	// Ratio is Current/Previous - 1 (+0.25 is 25% more); 0 when Previous
	// is 0.
	Ratio float64 `json:"ratio"`
	// ErrorRateBefore and ErrorRateNow are the periods' error rates.
	ErrorRateBefore float64 `json:"error_rate_before"`
	ErrorRateNow    float64 `json:"error_rate_now"`
}

// RouteTrend is one route's traffic over the range, its anomalies
// against its seasonal baseline, and its forecast.
type RouteTrend struct {
	Route string `json:"route"`
	// Calls, ErrorRate and P95MS are the series, one value a step.
	Calls     Series    `json:"-"`
	ErrorRate []float64 `json:"error_rate"`
	P95MS     []float64 `json:"p95_ms"`
	Values    []float64 `json:"calls"`
	Anomalies []Anomaly `json:"anomalies"`
	// Forecast is nil when the series is too short (ForecastNote says
	// why).
	Forecast     *Forecast `json:"forecast,omitempty"`
	ForecastNote string    `json:"forecast_note,omitempty"`
	// Exceeds says when the route is expected (forecast mean) and may
	// (the interval's upper bound) pass Options.Capacity.
	ExpectedToExceed *time.Time `json:"expected_to_exceed,omitempty"`
	MayExceed        *time.Time `json:"may_exceed,omitempty"`
}

// Run analyses the calls q holds over o's range.
func Run(ctx context.Context, q callstore.Querier, o Options) (*Analysis, error) {
	if o.Step <= 0 {
		o.Step = time.Hour
	}
	if o.Step%time.Hour != 0 {
		return nil, fmt.Errorf("%w: step %s is not whole hours", callstore.ErrBadQuery, o.Step)
	}
	if o.Top <= 0 {
		o.Top = 10
	}
	if o.Horizon <= 0 {
		o.Horizon = callstore.Week
	}
	from, to := o.From.Truncate(time.Hour), o.To.Truncate(time.Hour)
	if !to.After(from) {
		return nil, fmt.Errorf("%w: the range %s to %s holds no whole hour", callstore.ErrBadQuery, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	a := &Analysis{Schema: Schema, From: from, To: to, Step: o.Step.String()}
	base := callstore.AggregateQuery{From: from, To: to, Route: o.Route, API: o.API, Tenant: o.Tenant, Model: o.Model}
	span := to.Sub(from).Seconds()
	rows := func(by ...callstore.Dimension) ([]Row, error) {
		q2 := base
		q2.By = by
		aggs, err := q.Aggregate(ctx, q2)
		if err != nil {
			return nil, err
		}
		out := make([]Row, 0, len(aggs))
		for i := range aggs {
			out = append(out, row(&aggs[i], span))
		}
		slices.SortStableFunc(out, func(x, y Row) int { return cmp.Compare(y.Calls, x.Calls) })
		return out, nil
	}
	total, err := rows()
	if err != nil {
		return nil, fmt.Errorf("analysing calls: %w", err)
	}
	if len(total) > 0 {
		a.Total = total[0]
	}
	for _, t := range []struct {
		dst *[]Row
		by  []callstore.Dimension
	}{
		{&a.ByRoute, []callstore.Dimension{callstore.ByRoute}},
		{&a.ByAPI, []callstore.Dimension{callstore.ByAPI}},
		{&a.ByTenant, []callstore.Dimension{callstore.ByTenant}},
		{&a.ByModel, []callstore.Dimension{callstore.ByModel}},
		{&a.TopConsumers, []callstore.Dimension{callstore.ByTenant, callstore.ByKey}},
		{&a.Cost, []callstore.Dimension{callstore.ByTenant, callstore.ByModel}},
	} {
		if *t.dst, err = rows(t.by...); err != nil {
			return nil, fmt.Errorf("analysing calls: %w", err)
		}
	}
	a.ByAPI = slices.DeleteFunc(a.ByAPI, func(r Row) bool { return r.Key.API == "" })
	a.ByModel = slices.DeleteFunc(a.ByModel, func(r Row) bool { return r.Key.Model == "" })
	a.TopConsumers = a.TopConsumers[:min(len(a.TopConsumers), o.Top)]
	a.Cost = slices.DeleteFunc(a.Cost, func(r Row) bool { return r.Key.Model == "" })
	slices.SortStableFunc(a.Cost, func(x, y Row) int { return cmp.Compare(y.Cost, x.Cost) })

	if to.Sub(from) >= 2*callstore.Week {
		if a.WeekOverWeek, err = weekOverWeek(ctx, q, base, to); err != nil {
			return nil, fmt.Errorf("comparing weeks: %w", err)
		}
	}
	if a.Routes, err = trends(ctx, q, base, o, a.ByRoute); err != nil {
		return nil, fmt.Errorf("analysing trends: %w", err)
	}
	return a, nil
}

func row(g *callstore.Aggregate, span float64) Row {
	ms := func(q float64) float64 { return float64(g.Latency.Quantile(q)) / float64(time.Millisecond) }
	r := Row{Key: g.Key, Calls: g.Calls, Failed: g.Failed, ErrorRate: g.ErrorRate(), Rejected: g.Rejected,
		InputTokens: g.InputTokens, OutputTokens: g.OutputTokens, Cost: g.Cost}
	if span > 0 {
		r.RatePerSec = float64(g.Calls) / span
	}
	if g.Calls > 0 {
		r.P50MS, r.P95MS, r.P99MS = ms(0.5), ms(0.95), ms(0.99)
	}
	return r
}

func weekOverWeek(ctx context.Context, q callstore.Querier, base callstore.AggregateQuery, to time.Time) ([]Change, error) {
	get := func(from, to time.Time) (map[callstore.Key]callstore.Aggregate, error) {
		q2 := base
		q2.From, q2.To, q2.By = from, to, []callstore.Dimension{callstore.ByRoute}
		aggs, err := q.Aggregate(ctx, q2)
		m := map[callstore.Key]callstore.Aggregate{}
		for _, g := range aggs {
			m[g.Key] = g
		}
		return m, err
	}
	cur, err := get(to.Add(-callstore.Week), to)
	if err != nil {
		return nil, err
	}
	prev, err := get(to.Add(-2*callstore.Week), to.Add(-callstore.Week))
	if err != nil {
		return nil, err
	}
	keys := map[callstore.Key]bool{}
	for k := range cur {
		keys[k] = true
	}
	for k := range prev {
		keys[k] = true
	}
	var out []Change
	for k := range keys {
		c, p := cur[k], prev[k]
		ch := Change{Key: k, Previous: p.Calls, Current: c.Calls, ErrorRateBefore: p.ErrorRate(), ErrorRateNow: c.ErrorRate()}
		if p.Calls > 0 {
			ch.Ratio = float64(c.Calls)/float64(p.Calls) - 1
		}
		out = append(out, ch)
	}
	slices.SortFunc(out, func(x, y Change) int { return cmp.Compare(y.Current, x.Current) })
	return out, nil
}

// trends builds the series of the busiest routes, their anomalies and
// forecasts.
func trends(ctx context.Context, q callstore.Querier, base callstore.AggregateQuery, o Options, routes []Row) ([]RouteTrend, error) {
	q2 := base
	q2.Step, q2.By = o.Step, []callstore.Dimension{callstore.ByRoute}
	aggs, err := q.Aggregate(ctx, q2)
	if err != nil {
		return nil, err
	}
	n := int(base.To.Sub(base.From) / o.Step)
	idx := map[string]int{}
	var out []RouteTrend
	for _, r := range routes[:min(len(routes), o.Top)] {
		idx[r.Key.Route] = len(out)
		rt := RouteTrend{Route: r.Key.Route, Calls: Series{Start: base.From, Step: o.Step, Values: make([]float64, n)},
			ErrorRate: make([]float64, n), P95MS: make([]float64, n)}
		out = append(out, rt)
	}
	for i := range aggs {
		g := &aggs[i]
		j, ok := idx[g.Key.Route]
		if !ok {
			continue
		}
		k := int(g.Time.Sub(base.From) / o.Step)
		if k < 0 || k >= n {
			continue
		}
		out[j].Calls.Values[k] = float64(g.Calls)
		out[j].ErrorRate[k] = g.ErrorRate()
		out[j].P95MS[k] = float64(g.Latency.Quantile(0.95)) / float64(time.Millisecond)
	}
	for i := range out {
		rt := &out[i]
		rt.Values = rt.Calls.Values
		f, err := HoltWinters(rt.Calls, ForecastOptions{Horizon: max(int(o.Horizon/o.Step), 1)})
		if errors.Is(err, ErrShortSeries) {
			rt.ForecastNote = fmt.Sprintf("no forecast: %d steps of %s are too few (two days at least)", n, o.Step)
			continue
		}
		if err != nil {
			return nil, err
		}
		rt.Forecast = &f
		rt.Anomalies = Anomalies(rt.Calls, f, 0, true)
		// The strongest first, as many as the report lists.
		slices.SortStableFunc(rt.Anomalies, func(x, y Anomaly) int { return cmp.Compare(math.Abs(y.Score), math.Abs(x.Score)) })
		rt.Anomalies = rt.Anomalies[:min(len(rt.Anomalies), o.Top)]
		if o.Capacity > 0 {
			perStep := o.Capacity * o.Step.Seconds()
			if t, ok, pt, pok := f.Exceeds(perStep); ok || pok {
				if ok {
					rt.ExpectedToExceed = &t
				}
				if pok {
					rt.MayExceed = &pt
				}
			}
		}
	}
	return out, nil
}
