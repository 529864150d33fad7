package capacity

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/slo"
)

// flat is a replica serving 100 req/s one request at a time: 10 ms each.
var flat = Replica{Model: USL{Lambda: 100}, Limit: 1}

func latencySLO(t *testing.T, threshold string, objective string) *slo.SLO {
	t.Helper()
	slos, err := slo.Parse("slo.yaml", []byte(`kind: SLO
version: relia/v1
metadata: {name: latency}
spec:
  service: api
  objective: `+objective+`
  sli: {latency: {threshold: `+threshold+`}}
---
kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: api
  objective: 99%
  sli: {availability: {goodClasses: [ok]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	return slos[0]
}

func fixed(n int32) *autoscale.HPA {
	b := autoscale.DefaultBehavior()
	return &autoscale.HPA{Min: n, Max: n, Target: 1, Behavior: &b}
}

func TestSimulateSteadyLoadKeepsTheSLO(t *testing.T) {
	t.Parallel()
	sim, err := Simulate(Scenario{
		Traffic: Traffic{{0, 150}, {60 * time.Second, 150}},
		Replica: flat,
		Scaling: Scaling{HPA: fixed(2)},
		SLOs:    []*slo.SLO{latencySLO(t, "50ms", "99%")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if sim.Breached() || len(sim.Seconds) != 60 {
		t.Fatalf("breaches %+v over %d seconds", sim.Breaches, len(sim.Seconds))
	}
	last := sim.Seconds[59]
	// 75 req/s on each of two replicas that serve 100: three quarters
	// busy, nothing queues, every request takes its 10 ms (the fluid
	// model's queue is a share of a request).
	if math.Abs(last.Served-150) > 0.5 || math.Abs(last.Utilisation-0.75) > 0.01 || math.Abs(last.Latency.Seconds()-0.010) > 1e-4 {
		t.Errorf("steady second %+v", last)
	}
}

func TestSimulateOverloadBacklog(t *testing.T) {
	t.Parallel()
	// One replica of 100 req/s gets 200 req/s for 10 s, then 50 req/s.
	// The backlog grows by 100 a second to 1000, then drains at 50 a
	// second for 20 s. A request that finds n ahead takes (n+1)/100 s,
	// over 200 ms once n passes 19: the latency SLO is missed from the
	// first second of the overload until the last second the backlog is
	// above 19, about 19.6 s after the overload ends.
	sim, err := Simulate(Scenario{
		Traffic:  Traffic{{0, 50}, {10 * time.Second, 50}, {10 * time.Second, 200}, {20 * time.Second, 200}, {20 * time.Second, 50}, {60 * time.Second, 50}},
		Replica:  flat,
		Scaling:  Scaling{HPA: fixed(1)},
		SLOs:     []*slo.SLO{latencySLO(t, "200ms", "99%")},
		Duration: 60 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Breaches) != 1 {
		t.Fatalf("breaches %+v", sim.Breaches)
	}
	b := sim.Breaches[0]
	if b.SLO != "api-latency" || b.From != 10*time.Second || b.To < 39*time.Second || b.To > 41*time.Second {
		t.Errorf("breach %+v, want from 10s to about 40s", b)
	}
	if peak := sim.Seconds[19].MaxLatency; math.Abs(peak.Seconds()-10) > 0.2 {
		t.Errorf("latency at the end of the overload %s, want about 10s (1000 ahead at 100/s)", peak)
	}
}

func TestSimulateHPAScalesOnCompletedRequests(t *testing.T) {
	t.Parallel()
	// 50 req/s on one replica of 100, then 300 req/s from 10 s. The HPA
	// (target 70 per pod, sync and window 15 s, start-up 0) reads the
	// completed requests: a saturated replica completes 100, so it sees
	// 100/70 = 1.43 at 30 s and asks for 2; 200/140 at 45 s: 3;
	// 300/210 at 60 s: ceil(4.29) = 5.
	b := autoscale.DefaultBehavior()
	sim, err := Simulate(Scenario{
		Traffic:  Traffic{{0, 50}, {10 * time.Second, 50}, {10 * time.Second, 300}, {120 * time.Second, 300}},
		Replica:  Replica{Model: flat.Model, Limit: 1, Timeout: time.Hour}, // no timeouts: every request completes
		Scaling:  Scaling{HPA: &autoscale.HPA{Min: 1, Max: 10, Target: 70, SyncPeriod: 15 * time.Second, Behavior: &b}, MetricWindow: 15 * time.Second},
		Duration: 61 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []ScaleEvent{{At: 30 * time.Second, From: 1, To: 2}, {At: 45 * time.Second, From: 2, To: 3}, {At: 60 * time.Second, From: 3, To: 5}}
	if len(sim.Events) != len(want) {
		t.Fatalf("events %+v, want %+v", sim.Events, want)
	}
	for i, w := range want {
		if e := sim.Events[i]; e.At != w.At || e.From != w.From || e.To != w.To {
			t.Errorf("event %d: %+v, want %+v", i, e, w)
		}
	}
	if o := sim.Events[0].Observed; math.Abs(o-100) > 0.01 {
		t.Errorf("the first scale-up saw %v req/s, want the saturated replica's 100", o)
	}
}

func TestAssessExplainsAndFixesASpike(t *testing.T) {
	t.Parallel()
	// 10x in 30 s onto two replicas; new ones take 45 s to start.
	b := autoscale.DefaultBehavior()
	sc := Scenario{
		Traffic: Traffic{{0, 60}, {60 * time.Second, 60}, {90 * time.Second, 600}, {300 * time.Second, 600}},
		Replica: Replica{Model: USL{Lambda: 100}, Limit: 1, StartupDelay: 45 * time.Second, Timeout: 10 * time.Second},
		Scaling: Scaling{HPA: &autoscale.HPA{Min: 2, Max: 12, Target: 70, Behavior: &b}, MetricWindow: 30 * time.Second},
		SLOs:    []*slo.SLO{latencySLO(t, "200ms", "95%")},
	}
	a, err := Assess(sc)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Breached() {
		t.Fatal("want a breach")
	}
	if a.Spike.Factor != 10 || a.Spike.Rise < 25*time.Second || a.Spike.Rise > 30*time.Second {
		t.Errorf("spike %+v", a.Spike)
	}
	for _, want := range []string{"a 10x spike in", "breaches api-latency for about", "replicas take 45s to start", "minReplicas", "pre-scaling to 9 replicas"} {
		if !strings.Contains(a.Verdict, want) {
			t.Errorf("verdict %q lacks %q", a.Verdict, want)
		}
	}
	// the fixes hold: simulated again, neither breaches
	if a.MinReplicas == 0 || a.Prescale == nil {
		t.Fatalf("fixes %d %+v", a.MinReplicas, a.Prescale)
	}
	if s, _ := Simulate(withMin(sc, a.MinReplicas)); s.Breached() {
		t.Error("the minReplicas fix breaches")
	}
	if s, _ := Simulate(withMin(sc, a.MinReplicas-1)); !s.Breached() {
		t.Error("one replica fewer than the fix does not breach: the fix is not the smallest")
	}
	// a faster start shortens the breach
	fast := sc
	fast.Replica.StartupDelay = 5 * time.Second
	fs, _ := Simulate(fast)
	if fs.TotalBreach() >= a.TotalBreach() {
		t.Errorf("start-up 5s breaches %s, 45s %s", fs.TotalBreach(), a.TotalBreach())
	}
	t.Log(a.Verdict)
}

func TestSimulateKEDAActivatesFromZero(t *testing.T) {
	t.Parallel()
	sim, err := Simulate(Scenario{
		Traffic:  Traffic{{0, 0}, {20 * time.Second, 0}, {20 * time.Second, 50}, {90 * time.Second, 50}},
		Replica:  Replica{Model: USL{Lambda: 100}, Limit: 1, StartupDelay: 5 * time.Second},
		Scaling:  Scaling{KEDA: &autoscale.KEDA{MinReplicas: 0, MaxReplicas: 5, Threshold: 70, PollingInterval: 10 * time.Second}, MetricWindow: 10 * time.Second},
		Duration: 90 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing is counted while no replica runs except the gateway's fast
	// 503s, which are requests too: the first poll after 20 s (at 30 s)
	// sees them and activates one replica, ready at 35 s.
	if len(sim.Events) == 0 || sim.Events[0].At != 30*time.Second || sim.Events[0].To != 1 {
		t.Fatalf("events %+v", sim.Events)
	}
	if s := sim.Seconds[25]; s.Replicas != 0 || s.Failed != s.Offered {
		t.Errorf("second 25: %+v, want every request failed with no replica", s)
	}
	if s := sim.Seconds[40]; s.Ready != 1 || s.Failed != 0 {
		t.Errorf("second 40: %+v", s)
	}
}

func TestSimulateRejectsBadScenarios(t *testing.T) {
	t.Parallel()
	good := Scenario{Traffic: Traffic{{0, 1}, {time.Second, 1}}, Replica: flat, Scaling: Scaling{HPA: fixed(1)}}
	for name, mut := range map[string]func(*Scenario){
		"no autoscaler":   func(s *Scenario) { s.Scaling.HPA = nil },
		"two autoscalers": func(s *Scenario) { s.Scaling.KEDA = &autoscale.KEDA{MaxReplicas: 1, Threshold: 1} },
		"no model":        func(s *Scenario) { s.Replica.Model.Lambda = 0 },
		"out of order":    func(s *Scenario) { s.Traffic = Traffic{{time.Second, 1}, {0, 1}} },
		"odd step":        func(s *Scenario) { s.Step = 300 * time.Millisecond },
	} {
		sc := good
		mut(&sc)
		if _, err := Simulate(sc); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := Simulate(good); err != nil {
		t.Errorf("the good scenario: %v", err)
	}
}

func TestSpreadLevelsTheEmptiestReplicas(t *testing.T) {
	t.Parallel()
	s := &sim{}
	pods := []*pod{{n: 10}, {n: 0}, {n: 0}}
	if got := s.spread(pods, 4); got[0] != 0 || got[1] != 2 || got[2] != 2 {
		t.Errorf("4 arrivals: %v, want [0 2 2]", got)
	}
	// 20 fill the two empty ones to 10; the last 10 go a third to each
	got := s.spread(pods, 30)
	if math.Abs(got[0]-10.0/3) > 1e-9 || math.Abs(got[1]-(10+10.0/3)) > 1e-9 || math.Abs(got[0]+got[1]+got[2]-30) > 1e-9 {
		t.Errorf("30 arrivals: %v", got)
	}
	s.sc.Scaling.Balance = BalanceRoundRobin
	if got := s.spread(pods, 30); got[0] != 10 || got[1] != 10 {
		t.Errorf("round robin: %v", got)
	}
}

// TestAssessFindsWhatAScanFinds checks the remedies' bisection against a
// scan of every candidate, as Assess once did, on spikes whose replicas
// take from 15s to 60s to start.
func TestAssessFindsWhatAScanFinds(t *testing.T) {
	t.Parallel()
	b := autoscale.DefaultBehavior()
	for _, startup := range []time.Duration{15 * time.Second, 30 * time.Second, 45 * time.Second, 60 * time.Second} {
		sc := Scenario{
			Traffic: Traffic{{0, 60}, {60 * time.Second, 60}, {90 * time.Second, 600}, {300 * time.Second, 600}},
			Replica: Replica{Model: USL{Lambda: 100}, Limit: 1, StartupDelay: startup, Timeout: 10 * time.Second},
			Scaling: Scaling{HPA: &autoscale.HPA{Min: 2, Max: 12, Target: 70, Behavior: &b}, MetricWindow: 30 * time.Second},
			SLOs:    []*slo.SLO{latencySLO(t, "200ms", "95%")},
		}
		a, err := Assess(sc)
		if err != nil {
			t.Fatal(err)
		}
		keeps := func(alt Scenario) bool { s, err := Simulate(alt); return err == nil && !s.Breached() }
		var minFix int32
		for k := sc.Scaling.HPA.Min + 1; k <= sc.Scaling.HPA.Max; k++ {
			if keeps(withMin(sc, k)) {
				minFix = k
				break
			}
		}
		var leadFix time.Duration
		for lead := 15 * time.Second; lead <= maxLead; lead += 15 * time.Second {
			alt := sc
			alt.Scaling.Prescale = &Prescale{From: max(a.Spike.Start-lead, 0), Replicas: replicasForPeak(sc)}
			if keeps(alt) {
				leadFix = lead
				break
			}
			if a.Spike.Start-lead <= 0 {
				break
			}
		}
		var lead time.Duration
		if a.Prescale != nil {
			lead = a.Prescale.Lead
		}
		if a.MinReplicas != minFix || lead != leadFix {
			t.Errorf("start-up %s: minReplicas %d, lead %s; a scan finds %d and %s", startup, a.MinReplicas, lead, minFix, leadFix)
		}
	}
}

// TestSimulateQuietSecondsHaveNoLatency: a second in which no request
// arrives has no latency, mean or highest, rather than the latency a
// request would have had (a recorded day's quiet night).
func TestSimulateQuietSecondsHaveNoLatency(t *testing.T) {
	t.Parallel()
	sim, err := Simulate(Scenario{
		Traffic: TrafficFromCounts(10*time.Second, []float64{0, 500, 0}),
		Replica: flat,
		Scaling: Scaling{HPA: fixed(2)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range sim.Seconds {
		busy := sec.At >= 10*time.Second && sec.At < 20*time.Second
		if busy != (sec.MaxLatency > 0) || busy != (sec.Latency > 0) || math.Abs(sec.Offered-map[bool]float64{true: 50}[busy]) > 1e-9 {
			t.Errorf("%s: offered %v, latency %s, highest %s", sec.At, sec.Offered, sec.Latency, sec.MaxLatency)
		}
	}
}

func TestSmallestBisects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		lo, hi, from int // ok(k) is k >= from
		want         int
		found        bool
	}{
		{1, 10, 1, 1, true}, {1, 10, 7, 7, true}, {1, 10, 10, 10, true}, {1, 10, 11, 0, false},
		{3, 3, 3, 3, true}, {4, 3, 0, 0, false},
	} {
		calls := 0
		got, ok := smallest(c.lo, c.hi, func(k int) bool { calls++; return k >= c.from })
		if got != c.want || ok != c.found || calls > 5 {
			t.Errorf("%+v: got %d %v after %d calls", c, got, ok, calls)
		}
	}
}
