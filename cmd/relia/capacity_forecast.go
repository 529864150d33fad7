package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/relia-dev/relia/analyze"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/capacity"
	"github.com/relia-dev/relia/internal/config"
)

// callsHistory is how far back plan reads the call store for its
// forecast, and callsNeeded the least history the forecast accepts: two
// weeks, so that Holt-Winters fits the weekly season beside the daily one.
const (
	callsHistory = 8 * callstore.Week
	callsNeeded  = 2 * callstore.Week
)

// storeForecast is the peak and base plan takes from a forecast of the
// call store's hourly traffic, in req/s.
type storeForecast struct {
	// Peak is the planned peak: UpperPeak or MeanPeak, as --forecast-peak
	// chose; Base is the lowest forecast mean, at least 0.
	Peak, Base float64
	// MeanPeak and UpperPeak are the highest forecast mean and the
	// highest upper bound of its prediction interval, at MeanAt and
	// UpperAt.
	MeanPeak, UpperPeak float64
	MeanAt, UpperAt     time.Time
	// Source names where the peak comes from; Step is the arithmetic
	// line that shows both peaks and the base.
	Source, Step string
	// Points are the forecast hour by hour over the horizon, the first
	// at the hour now falls in; Upper is true when the upper bound, not
	// the mean, is planned for (and simulated).
	Points []analyze.ForecastPoint
	Upper  bool
}

// curve is the forecast as a traffic curve for simulate: the hourly
// upper bound (or mean, as --forecast-peak chose) over the horizon,
// each hour's forecast count held over its hour.
func (fc *storeForecast) curve() capacity.Traffic {
	counts := make([]float64, len(fc.Points))
	for i, p := range fc.Points {
		counts[i] = max(p.Mean, 0)
		if fc.Upper {
			counts[i] = max(p.Upper, 0)
		}
	}
	return capacity.TrafficFromCounts(time.Hour, counts)
}

// forecastFromStore reads the hourly request rate (of f.route, or of
// every route) from the call store f.callsDB over the callsHistory before
// now, forecasts it with analyze.HoltWinters over f.horizon, and takes
// the peak and base from the forecast.
func forecastFromStore(ctx context.Context, f *planFlags, now time.Time) (*storeForecast, error) {
	horizon, err := config.ParseDuration(f.horizon)
	if err != nil || horizon < time.Hour {
		return nil, badInput(fmt.Errorf("--horizon %q: want a duration of an hour or more (14d)", f.horizon))
	}
	if f.forecastPeak != "upper" && f.forecastPeak != "mean" {
		return nil, badInput(fmt.Errorf("--forecast-peak %q: want upper or mean", f.forecastPeak))
	}
	st, err := openCallStore(ctx, f)
	if err != nil {
		return nil, err
	}
	defer st.close()
	to := now.Truncate(time.Hour) // the hour under way is not whole yet
	from := to.Add(-callsHistory)
	values, err := st.counts(ctx, from, to, time.Hour)
	if err != nil {
		return nil, err
	}
	first := slices.IndexFunc(values, func(v float64) bool { return v > 0 })
	if first < 0 {
		first = len(values)
	}
	where, what := st.where, st.what
	held := time.Duration(len(values)-first) * time.Hour
	if held < callsNeeded {
		return nil, badInput(fmt.Errorf("--calls-db %s holds %s of traffic for %s in the last %s; the forecast needs %s (its daily and weekly seasons): give --peak until then",
			where, config.FormatDuration(held), what, config.FormatDuration(callsHistory), config.FormatDuration(callsNeeded)))
	}
	series := analyze.Series{Start: from.Add(time.Duration(first) * time.Hour), Step: time.Hour, Values: values[first:]}
	fc, err := analyze.HoltWinters(series, analyze.ForecastOptions{Horizon: int((horizon + time.Hour - 1) / time.Hour)})
	if err != nil {
		return nil, badInput(fmt.Errorf("forecasting %s from %s: %w", what, where, err))
	}
	perSec := 1 / time.Hour.Seconds()
	out := &storeForecast{MeanPeak: math.Inf(-1), UpperPeak: math.Inf(-1), Base: math.Inf(1), Points: fc.Points, Upper: f.forecastPeak == "upper"}
	for _, p := range fc.Points {
		if p.Mean > out.MeanPeak {
			out.MeanPeak, out.MeanAt = p.Mean, p.T
		}
		if p.Upper > out.UpperPeak {
			out.UpperPeak, out.UpperAt = p.Upper, p.T
		}
		out.Base = min(out.Base, p.Mean)
	}
	out.MeanPeak, out.UpperPeak, out.Base = out.MeanPeak*perSec, out.UpperPeak*perSec, max(out.Base*perSec, 0)
	if !(out.MeanPeak > 0) {
		return nil, badInput(errors.New("the forecast of " + what + " from " + where + " is no traffic: give --peak"))
	}
	level := fmt.Sprintf("%g%%", 100*fc.Level)
	out.Peak, out.Source = out.UpperPeak, "forecast upper bound"
	if f.forecastPeak == "mean" {
		out.Peak, out.Source = out.MeanPeak, "forecast mean"
	}
	out.Source += fmt.Sprintf(" over the next %s from the call store (%s, %s)", f.horizon, where, what)
	out.Step = fmt.Sprintf("forecast: Holt-Winters (seasons of %v hours) on %s of hourly traffic; over the next %s the mean peaks at %s req/s (%s), the %s upper bound at %s req/s (%s); the lowest mean, %s req/s, is the base",
		fc.Seasons, config.FormatDuration(held), f.horizon, capacity.FormatRate(out.MeanPeak), out.MeanAt.UTC().Format(time.RFC3339),
		level, capacity.FormatRate(out.UpperPeak), out.UpperAt.UTC().Format(time.RFC3339), capacity.FormatRate(out.Base))
	return out, nil
}

// callStore is the call store that --calls-db names, read for the
// traffic of --route (or of every route).
type callStore struct {
	q     callstore.Querier
	close func()
	route string
	// where names the store in messages (a URL without its password),
	// what the traffic read ("route orders", "all routes").
	where, what string
}

// openCallStore opens the store of f.callsDB.
func openCallStore(ctx context.Context, f *planFlags) (*callStore, error) {
	sf := storeFlags{db: f.callsDB, flag: "--calls-db"}
	q, closeFn, err := sf.open(ctx)
	if err != nil {
		return nil, err
	}
	st := &callStore{q: q, close: closeFn, route: f.route, where: f.callsDB, what: "all routes"}
	if s, ok := q.(fmt.Stringer); ok && strings.Contains(f.callsDB, "://") {
		st.where = s.String()
	}
	if f.route != "" {
		st.what = "route " + f.route
	}
	return st, nil
}

// counts reads the calls in each step of [from, to) from the store's
// rollups (per-minute ones for a step under an hour), 0 where none were
// stored: the one reader of the store's traffic that plan's forecast and
// simulate's recorded day share.
func (st *callStore) counts(ctx context.Context, from, to time.Time, step time.Duration) ([]float64, error) {
	aggs, err := st.q.Aggregate(ctx, callstore.AggregateQuery{From: from, To: to, Step: step, Route: st.route})
	if err != nil {
		return nil, queryErr(err)
	}
	values := make([]float64, int(to.Sub(from)/step))
	for _, g := range aggs {
		if k := int(g.Time.Sub(from) / step); k >= 0 && k < len(values) {
			values[k] += float64(g.Calls)
		}
	}
	return values, nil
}

// storeDay is the traffic a call store recorded on one day (UTC) as a
// curve: per minute where the store still keeps the day's per-minute
// rollups (30 days by default), hour by hour where retention has
// thinned them to hours. A day under way ends at its last whole minute
// (or hour).
func storeDay(ctx context.Context, f *planFlags, day string, now time.Time) (capacity.Traffic, string, error) {
	from, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return nil, "", badInput(fmt.Errorf("--day %q: want a date, YYYY-MM-DD (UTC)", day))
	}
	end := func(res time.Duration) time.Time {
		if to := now.Truncate(res); to.Before(from.Add(24 * time.Hour)) {
			return to
		}
		return from.Add(24 * time.Hour)
	}
	toMin, toHour := end(time.Minute), end(time.Hour)
	if !toMin.After(from) {
		return nil, "", badInput(fmt.Errorf("--day %s has not begun", day))
	}
	st, err := openCallStore(ctx, f)
	if err != nil {
		return nil, "", err
	}
	defer st.close()
	mins, err := st.counts(ctx, from, toMin, time.Minute)
	if err != nil {
		return nil, "", err
	}
	var hours []float64
	if toHour.After(from) {
		if hours, err = st.counts(ctx, from, toHour, time.Hour); err != nil {
			return nil, "", err
		}
	}
	// Retention deletes per-minute rollups by age: a day they no longer
	// cover in full has fewer calls in its whole hours' minutes than in
	// the hours.
	var inMins, inHours float64
	for _, v := range mins[:len(hours)*60] {
		inMins += v
	}
	for _, v := range hours {
		inHours += v
	}
	name := fmt.Sprintf("%s from the call store (%s, %s)", day, st.where, st.what)
	switch {
	case inMins == inHours && slices.ContainsFunc(mins, func(v float64) bool { return v > 0 }):
		return capacity.TrafficFromCounts(time.Minute, mins), name + ", per minute", nil
	case inHours > 0:
		return capacity.TrafficFromCounts(time.Hour, hours), name + ", hour by hour", nil
	}
	return nil, "", badInput(fmt.Errorf("--calls-db %s holds no calls for %s on %s", st.where, st.what, day))
}
