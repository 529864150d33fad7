package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/analyze"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/capacity"
)

// writeHourlyTraffic writes, through the call store's own API, calls of
// route "orders" for the given hours before the current hour (and two
// hours past it, so that an hour turning during the test leaves no gap):
// 120 calls an hour plus a daily cycle of 90, so 210 calls an hour at the
// daily peak, with ±5% noise from a fixed seed. It returns the first hour written
// and the calls of each hour.
func writeHourlyTraffic(t *testing.T, file string, hours int) (time.Time, []float64) {
	t.Helper()
	ctx := context.Background()
	s, err := callstore.Open(ctx, file, callstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now().Truncate(time.Hour).Add(-time.Duration(hours) * time.Hour)
	var batch []callstore.Record
	var counts []float64
	for h := range hours + 2 {
		at := start.Add(time.Duration(h) * time.Hour)
		calls := (120 + 90*math.Sin(2*math.Pi*float64(at.Hour())/24)) * (0.95 + 0.1*rng.Float64())
		counts = append(counts, float64(int(calls)))
		for i := range int(calls) {
			batch = append(batch, callstore.Record{Time: at.Add(time.Duration(i) * 10 * time.Second), RequestID: fmt.Sprint("r", h, "-", i),
				Route: "orders", Method: "GET", Path: "/orders", Status: 200, Outcome: "ok", Attempts: 1, Latency: 10 * time.Millisecond})
		}
		if len(batch) >= 2000 || h == hours+1 {
			if err := s.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return start, counts
}

// TestCapacityPlanFromCallStoreForecast plans from a forecast of three
// weeks of stored traffic whose daily peak is 210 calls an hour
// (0.0583 req/s): the planned peak is the forecast's upper bound, near the
// known peak and above the forecast mean; the replicas follow from it by
// the printed arithmetic; and two weeks are the least history it takes.
func TestCapacityPlanFromCallStoreForecast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "calls.db")
	writeHourlyTraffic(t, db, 3*168)
	const knownPeak = 210.0 / 3600
	args := []string{"capacity", "plan", "--capacity", "0.01", "--calls-db", db, "--route", "orders", "--horizon", "14d"}

	code, out, errOut := runCLI(t, args...)
	source := "forecast upper bound over the next 14d from the call store (" + db + ", route orders)"
	if code != exitPass || !strings.Contains(out, source) || !strings.Contains(out, "forecast: Holt-Winters (seasons of [24 168] hours) on 3w of hourly traffic") {
		t.Fatalf("plan: code %d\n%s\n%s", code, out, errOut)
	}
	code, js, errOut := runCLI(t, append(args, "-o", "json")...)
	var p capacity.Plan
	if err := json.Unmarshal([]byte(js), &p); code != exitPass || err != nil {
		t.Fatalf("plan -o json: code %d, %v\n%s\n%s", code, err, js, errOut)
	}
	peak := p.Input.Peak
	if peak < knownPeak || peak > 1.3*knownPeak {
		t.Errorf("planned peak %v req/s: want the upper bound, a little above the known peak %v", peak, knownPeak)
	}
	// The arithmetic the table prints: peak × (1 + 30%) ÷ (0.01 × 70%).
	want := int(math.Ceil(peak * 1.3 / (0.01 * 0.7)))
	line := fmt.Sprintf("peak: %s req/s (%s) × (1 + 30%% headroom) = %s req/s; ÷ 0.007 req/s per replica = %.2f → %d replicas",
		capacity.FormatRate(peak), source, capacity.FormatRate(peak*1.3), peak*1.3/0.007, want)
	if p.ForPeak != want || p.MaxReplicas != want || !strings.Contains(out, line) {
		t.Errorf("for the peak %d, max %d replicas; want %d and the line\n%s\nin\n%s", p.ForPeak, p.MaxReplicas, want, line, out)
	}
	if !strings.Contains(out, "the 95% upper bound at "+capacity.FormatRate(peak)+" req/s") {
		t.Errorf("the forecast line does not show the upper bound %v:\n%s", peak, out)
	}
	// The daily cycle, 30 to 210 calls an hour, is a spike of 3x or more:
	// the behaviour is chosen from the forecast's shape.
	if !regexp.MustCompile(`scaling behaviour: a [0-9.]+x spike in [0-9hms]+: scale up by up to`).MatchString(out) {
		t.Errorf("the scaling behaviour is not the forecast's spike:\n%s", out)
	}
	if p.Input.Base <= 0 || p.Input.Base > 60.0/3600 {
		t.Errorf("base %v req/s: want the forecast's low, near 30 calls an hour (%v req/s)", p.Input.Base, 30.0/3600)
	}

	// The mean instead of the upper bound: a lower peak, still near the
	// known one.
	code, js, errOut = runCLI(t, append(args, "-o", "json", "--forecast-peak", "mean")...)
	var pm capacity.Plan
	if err := json.Unmarshal([]byte(js), &pm); code != exitPass || err != nil {
		t.Fatalf("plan --forecast-peak mean: code %d, %v\n%s\n%s", code, err, js, errOut)
	}
	if m := pm.Input.Peak; m >= peak || math.Abs(m-knownPeak) > 0.1*knownPeak || !strings.HasPrefix(pm.Input.PeakSource, "forecast mean over the next 14d") {
		t.Errorf("mean peak %v req/s (%s): want below the upper bound %v and within 10%% of %v", m, pm.Input.PeakSource, peak, knownPeak)
	}
	if !strings.Contains(out, "the mean peaks at "+capacity.FormatRate(pm.Input.Peak)+" req/s") {
		t.Errorf("the table does not show the mean peak %v:\n%s", pm.Input.Peak, out)
	}

	// Ten days are too few.
	short := filepath.Join(dir, "short.db")
	writeHourlyTraffic(t, short, 10*24)
	code, _, errOut = runCLI(t, "capacity", "plan", "--capacity", "0.01", "--calls-db", short, "--route", "orders")
	if code != exitBadInput || !strings.Contains(errOut, "holds 10d of traffic for route orders") || !strings.Contains(errOut, "needs 2w") {
		t.Errorf("ten days: code %d, want %d and how much there is and is needed: %s", code, exitBadInput, errOut)
	}
	for _, extra := range [][]string{
		{"--peak", "1"},
		{"--horizon", "soon"},
		{"--forecast-peak", "p99"},
	} {
		if code, _, errOut := runCLI(t, append(args, extra...)...); code != exitBadInput {
			t.Errorf("%v: code %d, want %d: %s", extra, code, exitBadInput, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "capacity", "plan", "--capacity", "1", "--calls-db", filepath.Join(dir, "none.db")); code != exitBadInput || !strings.Contains(errOut, "--calls-db: no call store") {
		t.Errorf("a missing store: code %d: %s", code, errOut)
	}
}

// TestCapacityForecastSpikeAtEveryHour: whatever the hour a plan is
// made at, the forecast of a daily cycle (30 to 210 calls an hour) is a
// spike the autoscaler must meet, even when the forecast's highest hour
// falls within its first hours.
func TestCapacityForecastSpikeAtEveryHour(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "calls.db")
	const weeks = 3 * 168
	start, _ := writeHourlyTraffic(t, db, weeks+24)
	f := &planFlags{callsDB: db, route: "orders", horizon: "14d", forecastPeak: "upper"}
	p, err := capacity.NewPlan(capacity.PlanInput{Capacity: 0.01, Peak: 210.0 / 3600, Base: 30.0 / 3600})
	if err != nil {
		t.Fatal(err)
	}
	for h := range 24 {
		now := start.Add(time.Duration(weeks+h)*time.Hour + time.Minute)
		fc, err := forecastFromStore(context.Background(), f, now)
		if err != nil {
			t.Fatal(err)
		}
		sp := fc.curve().Spike()
		if _, why := p.Behavior(sp); sp.Factor < 3 || !strings.HasPrefix(why, "a ") {
			t.Errorf("planned at %s (forecast peak at %s): %s; want the daily cycle's spike of 3x or more", now.UTC().Format(time.RFC3339), fc.UpperAt.UTC().Format(time.RFC3339), why)
		}
	}
}

// TestCapacitySimulateFromCallStoreForecast replays the forecast of
// three weeks of stored traffic: the curve is, hour by hour, what
// analyze.HoltWinters forecasts from the stored counts (its upper bound,
// or its mean), and simulate judges it: replicas that serve it keep the
// SLO, one replica that cannot breaches it.
func TestCapacitySimulateFromCallStoreForecast(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "calls.db")
	const hours = 3 * 168
	start, counts := writeHourlyTraffic(t, db, hours)
	now := start.Add(hours*time.Hour + time.Minute)
	want, err := analyze.HoltWinters(analyze.Series{Start: start, Step: time.Hour, Values: counts[:hours]}, analyze.ForecastOptions{Horizon: 24})
	if err != nil {
		t.Fatal(err)
	}
	for _, which := range []string{"upper", "mean"} {
		fc, err := forecastFromStore(context.Background(), &planFlags{callsDB: db, route: "orders", horizon: "1d", forecastPeak: which}, now)
		if err != nil {
			t.Fatal(err)
		}
		curve := fc.curve()
		if curve.End() != 24*time.Hour {
			t.Fatalf("%s: the curve lasts %s, want the horizon, 24h", which, curve.End())
		}
		for k, p := range want.Points {
			v := p.Upper
			if which == "mean" {
				v = p.Mean
			}
			for _, at := range []time.Duration{0, 30 * time.Minute, 59 * time.Minute} {
				if got := curve.RateAt(time.Duration(k)*time.Hour+at) * 3600; math.Abs(got-max(v, 0)) > 1e-9*max(v, 1) {
					t.Fatalf("%s, hour %d (+%s): the curve carries %v calls an hour, analyze forecasts %v", which, k, at, got, v)
				}
			}
		}
	}

	slo := writeFile(t, dir, "slo.yaml", availabilitySLO)
	// A replica serves 1 req/s, one request at a time: the replicas keep
	// up with 0.06 req/s however they scale.
	args := []string{"capacity", "simulate", "--calls-db", db, "--route", "orders", "--capacity", "1", "--model", "1,0,0", "--limit", "1",
		"--slo", slo, "--startup", "1m"}
	code, out, errOut := runCLI(t, args...)
	if code != exitPass || !strings.Contains(out, "keeps every SLO") {
		t.Fatalf("simulate the forecast: code %d, want %d and the SLO kept\n%s\n%s", code, exitPass, out, errOut)
	}
	// One replica that serves a request a minute cannot.
	code, js, errOut := runCLI(t, append(args, "--model", "0.0167,0,0", "--max-replicas", "1", "-o", "json")...)
	var res struct {
		Plan       capacity.Plan       `json:"plan"`
		Simulation capacity.Assessment `json:"simulation"`
	}
	if err := json.Unmarshal([]byte(js), &res); code != exitFailed || err != nil {
		t.Fatalf("one slow replica: code %d, want %d; %v\n%s", code, exitFailed, err, errOut)
	}
	if !strings.Contains(res.Simulation.Verdict, "breaches api-availability for about 1d") || len(res.Simulation.Seconds) != 24*3600 {
		t.Errorf("verdict %q over %d seconds: want a breach of availability over the day", res.Simulation.Verdict, len(res.Simulation.Seconds))
	}
	if src := res.Plan.Input.PeakSource; !strings.HasPrefix(src, "forecast upper bound over the next 1d from the call store") {
		t.Errorf("the plan's peak comes from %q, want the forecast's upper bound", src)
	}
	// The table of a day-long breach shows where it begins and ends, not
	// each of its seconds, and rates under 1 req/s as they are, not as 0.
	code, out, errOut = runCLI(t, append(args, "--model", "0.0167,0,0", "--max-replicas", "1")...)
	first := res.Simulation.Seconds[0]
	row := regexp.MustCompile(`(?m)^0s +` + regexp.QuoteMeta(capacity.FormatRate(first.Offered)) + ` `)
	if lines := strings.Count(out, "\n"); code != exitFailed || lines > 100 || !strings.Contains(out, res.Simulation.Verdict+".") || !row.MatchString(out) {
		t.Errorf("the table: code %d, %d lines, want %d, under 100 lines, the verdict and %v req/s offered at 0s\n%s\n%s", code, lines, exitFailed, first.Offered, out, errOut)
	}
}

// TestCapacitySimulateARecordedDay replays a day the call store
// recorded: per minute while it keeps per-minute rollups, the curve
// carrying each minute's stored calls; hour by hour once retention has
// dropped them; and simulate judges the day.
func TestCapacitySimulateARecordedDay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "calls.db")
	s, err := callstore.Open(ctx, db, callstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-48 * time.Hour)
	// From 10:00 to 13:00, 20 to 80 calls a minute, and a call a minute
	// of another route that --route leaves out.
	minutes := make([]float64, 24*60)
	var batch []callstore.Record
	for m := 600; m < 780; m++ {
		minutes[m] = float64(20 + (m*37)%61)
		for i := range int(minutes[m]) {
			at := day.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Second/2)
			batch = append(batch, callstore.Record{Time: at, RequestID: fmt.Sprint("m", m, "-", i), Route: "orders", Method: "GET", Path: "/orders",
				Status: 200, Outcome: "ok", Attempts: 1, Latency: 10 * time.Millisecond})
		}
		batch = append(batch, callstore.Record{Time: day.Add(time.Duration(m) * time.Minute), RequestID: fmt.Sprint("u", m), Route: "users",
			Method: "GET", Path: "/users", Status: 200, Outcome: "ok", Attempts: 1, Latency: 10 * time.Millisecond})
	}
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	f := &planFlags{callsDB: db, route: "orders"}
	name := day.Format(time.DateOnly)
	curve, src, err := storeDay(ctx, f, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if curve.End() != 24*time.Hour || !strings.HasSuffix(src, "route orders), per minute") {
		t.Fatalf("curve of %s (%s): want the day per minute", curve.End(), src)
	}
	for m, c := range minutes {
		if got := curve.RateAt(time.Duration(m)*time.Minute+30*time.Second) * 60; math.Abs(got-c) > 1e-9 {
			t.Fatalf("minute %d: the curve carries %v calls, the store holds %v", m, got, c)
		}
	}

	// A day under way ends at its last whole minute.
	if curve, src, err := storeDay(ctx, f, name, day.Add(10*time.Hour+30*time.Minute+20*time.Second)); err != nil ||
		curve.End() != 10*time.Hour+30*time.Minute || !strings.HasSuffix(src, ", per minute") || math.Abs(curve.RateAt(10*time.Hour+29*time.Minute)*60-minutes[629]) > 1e-9 {
		t.Errorf("at 10:30:20: %v, a curve to %s (%s)", err, curve.End(), src)
	}

	sloFile := writeFile(t, dir, "slo.yaml", availabilitySLO)
	args := []string{"capacity", "simulate", "--calls-db", db, "--route", "orders", "--day", name, "--capacity", "1", "--model", "1,0,0", "--limit", "1",
		"--slo", sloFile, "--startup", "10s", "--min-replicas", "2", "-o", "json"}
	code, js, errOut := runCLI(t, args...)
	var res struct {
		Plan       capacity.Plan       `json:"plan"`
		Simulation capacity.Assessment `json:"simulation"`
	}
	if err := json.Unmarshal([]byte(js), &res); code != exitPass || err != nil {
		t.Fatalf("simulate the day: code %d, want %d; %v\n%s", code, exitPass, err, errOut)
	}
	// What the simulation offers each minute is what the store counted.
	secs := res.Simulation.Seconds
	if len(secs) != 24*3600 {
		t.Fatalf("%d seconds simulated, want the day's %d", len(secs), 24*3600)
	}
	for m, c := range minutes {
		var offered float64
		for _, sec := range secs[60*m : 60*m+60] {
			offered += sec.Offered
		}
		if math.Abs(offered-c) > 1e-6 {
			t.Fatalf("minute %d: %v requests offered, the store holds %v", m, offered, c)
		}
	}
	if v := res.Simulation.Verdict; !strings.Contains(v, "keeps every SLO") || res.Plan.Input.PeakSource != name+" from the call store ("+db+", route orders), per minute" {
		t.Errorf("verdict %q, peak from %q", v, res.Plan.Input.PeakSource)
	}

	// A peak of one's own plans the replicas; the day is still the curve,
	// and the report's charts start at its midnight.
	html := filepath.Join(dir, "day.html")
	code, js, errOut = runCLI(t, append(args, "--peak", "5", "--html", html)...)
	res.Plan = capacity.Plan{}
	if err := json.Unmarshal([]byte(js), &res); code != exitPass || err != nil || res.Plan.Input.Peak != 5 || res.Plan.Input.PeakSource != "given" {
		t.Errorf("--peak 5 with --day: code %d, %v, peak %v (%s)\n%s", code, err, res.Plan.Input.Peak, res.Plan.Input.PeakSource, errOut)
	}
	if page, err := os.ReadFile(html); err != nil || !strings.Contains(string(page), name+" 00:00:00 UTC") {
		t.Errorf("the report does not date the day %s: %v", name, err)
	}

	// Retention drops the per-minute rollups: the day comes hour by hour.
	if _, err := s.Maintain(ctx, callstore.Retention{Minutes: time.Minute}); err != nil {
		t.Fatal(err)
	}
	curve, src, err = storeDay(ctx, f, name, time.Now())
	if err != nil || !strings.HasSuffix(src, ", hour by hour") {
		t.Fatalf("after retention: %v, %q", err, src)
	}
	for h := range 24 {
		var c float64
		for _, v := range minutes[60*h : 60*h+60] {
			c += v
		}
		if got := curve.RateAt(time.Duration(h)*time.Hour+time.Minute) * 3600; math.Abs(got-c) > 1e-9*max(c, 1) {
			t.Fatalf("hour %d: the curve carries %v calls, the store holds %v", h, got, c)
		}
	}

	for _, bad := range [][]string{
		{"--day", "yesterday"},
		{"--day", day.Add(-24 * time.Hour).Format(time.DateOnly)}, // no calls
		{"--black-friday"},
	} {
		code, _, errOut := runCLI(t, append(args, bad...)...)
		if code != exitBadInput {
			t.Errorf("%v: code %d, want %d: %s", bad, code, exitBadInput, errOut)
		}
	}
	if code, _, errOut := runCLI(t, "capacity", "simulate", "--day", name, "--capacity", "1", "--model", "1,0,0"); code != exitBadInput || !strings.Contains(errOut, "--day goes with --calls-db") {
		t.Errorf("--day alone: code %d: %s", code, errOut)
	}
}
