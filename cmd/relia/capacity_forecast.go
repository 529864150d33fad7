package main

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	sf := storeFlags{db: f.callsDB, flag: "--calls-db"}
	q, closeFn, err := sf.open(ctx)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	where := f.callsDB
	if s, ok := q.(fmt.Stringer); ok && strings.Contains(f.callsDB, "://") {
		where = s.String() // the URL without its password
	}
	what := "all routes"
	if f.route != "" {
		what = "route " + f.route
	}
	to := now.Truncate(time.Hour) // the hour under way is not whole yet
	from := to.Add(-callsHistory)
	aggs, err := q.Aggregate(ctx, callstore.AggregateQuery{From: from, To: to, Step: time.Hour, Route: f.route})
	if err != nil {
		return nil, queryErr(err)
	}
	values := make([]float64, int(to.Sub(from)/time.Hour))
	first := len(values)
	for _, g := range aggs {
		k := int(g.Time.Sub(from) / time.Hour)
		if k < 0 || k >= len(values) || g.Calls == 0 {
			continue
		}
		values[k] = float64(g.Calls)
		first = min(first, k)
	}
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
	out := &storeForecast{MeanPeak: math.Inf(-1), UpperPeak: math.Inf(-1), Base: math.Inf(1)}
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
