package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/capacity"
)

// writeHourlyTraffic writes, through the call store's own API, calls of
// route "orders" for the given hours before the current hour (and two
// hours past it, so that an hour turning during the test leaves no gap):
// 120 calls an hour plus a daily cycle of 90, so 210 calls an hour at the
// daily peak, with ±5% noise from a fixed seed.
func writeHourlyTraffic(t *testing.T, file string, hours int) {
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
	for h := range hours + 2 {
		at := start.Add(time.Duration(h) * time.Hour)
		calls := (120 + 90*math.Sin(2*math.Pi*float64(at.Hour())/24)) * (0.95 + 0.1*rng.Float64())
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
