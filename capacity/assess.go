package capacity

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Assessment is a simulation with its verdict in words and, when an SLO
// was breached, the smallest changes that keep every SLO.
type Assessment struct {
	*Simulation
	// Spike is the traffic curve's spike.
	Spike Spike `json:"spike"`
	// Causes say why the SLOs were breached.
	Causes []string `json:"causes,omitempty"`
	// MinReplicas is the smallest minimum replica count that keeps every
	// SLO through the curve; 0 when none up to the maximum does.
	MinReplicas int32 `json:"min_replicas_fix,omitempty"`
	// Prescale is the latest pre-scale (to the replicas the peak needs)
	// that keeps every SLO, as a lead before the spike; nil when none
	// found.
	Prescale *PrescaleFix `json:"prescale_fix,omitempty"`
	// Verdict says it all in one sentence.
	Verdict string `json:"verdict"`
}

// PrescaleFix is a pre-scale that keeps the SLOs: Replicas from Lead
// before the spike starts.
type PrescaleFix struct {
	Replicas int32         `json:"replicas"`
	Lead     time.Duration `json:"lead_ns"`
}

// maxLead is the longest pre-scale lead Assess tries.
const maxLead = 30 * time.Minute

// Assess simulates the scenario, explains any SLO breach, and searches
// for the two usual remedies: a higher minimum replica count, and a
// scheduled pre-scale ahead of the spike.
func Assess(sc Scenario) (*Assessment, error) {
	s, err := Simulate(sc)
	if err != nil {
		return nil, err
	}
	a := &Assessment{Simulation: s, Spike: sc.Traffic.Spike()}
	if !s.Breached() {
		a.Verdict = fmt.Sprintf("%s keeps every SLO: the autoscaler goes from %d to %d replicas and the busiest second runs them at %.0f%% of their capacity",
			a.Spike, s.Seconds[0].Replicas, s.PeakReplicas, 100*peakUtilisation(s))
		return a, nil
	}
	a.Causes = causes(sc, s, a.Spike)
	keeps := func(alt Scenario) bool {
		as, err := Simulate(alt)
		return err == nil && !as.Breached()
	}
	lo, hi := bounds(sc)
	if k, ok := smallest(int(lo)+1, int(hi), func(k int) bool { return keeps(withMin(sc, int32(k))) }); ok {
		a.MinReplicas = int32(k)
	}
	need := replicasForPeak(sc)
	if need > lo {
		// Leads of 15s steps, up to maxLead or the first that pre-scales
		// from the start of the curve.
		last := int(maxLead / (15 * time.Second))
		if a.Spike.Start > 0 {
			last = min(last, int((a.Spike.Start+15*time.Second-1)/(15*time.Second)))
		} else {
			last = 1
		}
		prescale := func(k int) Scenario {
			alt := sc
			alt.Scaling.Prescale = &Prescale{From: max(a.Spike.Start-time.Duration(k)*15*time.Second, 0), Replicas: need}
			return alt
		}
		if k, ok := smallest(1, last, func(k int) bool { return keeps(prescale(k)) }); ok {
			a.Prescale = &PrescaleFix{Replicas: need, Lead: time.Duration(k) * 15 * time.Second}
		}
	}
	var fixes []string
	if a.MinReplicas > 0 {
		fixes = append(fixes, fmt.Sprintf("minReplicas %d", a.MinReplicas))
	}
	if a.Prescale != nil {
		fixes = append(fixes, fmt.Sprintf("pre-scaling to %d replicas %s ahead", a.Prescale.Replicas, fmtDur(a.Prescale.Lead)))
	}
	fix := "neither a higher minReplicas nor pre-scaling up to maxReplicas keeps it: raise maxReplicas or the capacity of a replica"
	if len(fixes) > 0 {
		fix = strings.Join(fixes, " or ") + " keeps it"
	}
	a.Verdict = fmt.Sprintf("%s breaches %s because %s; %s", a.Spike, s.describeBreaches(), joinAnd(a.Causes), fix)
	return a, nil
}

// smallest is the smallest k in [lo, hi] for which ok holds, found by
// bisection: the remedies are monotone (more replicas, or the same
// replicas sooner, keep whatever fewer or later kept), so a search that
// simulates a day or a week a few times, not once per candidate, finds
// what a scan would.
func smallest(lo, hi int, ok func(int) bool) (int, bool) {
	if lo > hi || !ok(hi) {
		return 0, false
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if ok(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi, true
}

// bounds returns the scenario's minimum and maximum replica counts.
func bounds(sc Scenario) (lo, hi int32) {
	if k := sc.Scaling.KEDA; k != nil {
		return k.MinReplicas, k.MaxReplicas
	}
	return sc.Scaling.HPA.Min, sc.Scaling.HPA.Max
}

// withMin returns the scenario with minimum k, starting at k.
func withMin(sc Scenario, k int32) Scenario {
	if sc.Scaling.KEDA != nil {
		kd := *sc.Scaling.KEDA
		kd.MinReplicas = k
		sc.Scaling.KEDA = &kd
	} else {
		h := *sc.Scaling.HPA
		h.Min = k
		sc.Scaling.HPA = &h
	}
	sc.Scaling.Initial = max(sc.Scaling.Initial, k)
	return sc
}

// target returns the autoscaler's target per replica.
func target(sc Scenario) float64 {
	if k := sc.Scaling.KEDA; k != nil {
		return k.Threshold
	}
	return sc.Scaling.HPA.Target
}

// replicasForPeak is where the autoscaler settles at the curve's peak:
// the peak over the target per replica, within the bounds.
func replicasForPeak(sc Scenario) int32 {
	_, peak := sc.Traffic.Peak()
	_, hi := bounds(sc)
	return min(int32(math.Ceil(peak/target(sc))), hi)
}

// causes explains a breach from the seconds it covers.
func causes(sc Scenario, s *Simulation, sp Spike) []string {
	var capped, starting, limited bool
	capacity := sc.Replica.Capacity()
	_, hi := bounds(sc)
	for _, sec := range s.Seconds {
		if len(sec.Breached) == 0 {
			continue
		}
		if sec.Replicas >= hi && sec.Offered > float64(sec.Ready)*capacity {
			capped = true
		}
		if sec.Replicas > sec.Ready {
			starting = true
		}
	}
	var firstUp time.Duration = -1
	for _, e := range s.Events {
		if e.At >= sp.Start && e.To > e.From && firstUp < 0 {
			firstUp = e.At - sp.Start
		}
		if e.Reason == "scale-up limit" && inBreach(s, e.At) {
			limited = true
		}
	}
	var out []string
	if capped {
		_, peak := sc.Traffic.Peak()
		out = append(out, fmt.Sprintf("maxReplicas %d is below the %d replicas the peak of %s req/s needs", hi, int32(math.Ceil(peak/capacity)), fmtNum(peak)))
	}
	if starting {
		out = append(out, fmt.Sprintf("replicas take %s to start", fmtDur(sc.Replica.StartupDelay)))
	}
	if firstUp > 0 {
		out = append(out, fmt.Sprintf("the autoscaler first scaled up %s after the rise began (it reads a %s rate every %s)",
			fmtDur(firstUp), fmtDur(metricWindow(sc)), fmtDur(syncPeriod(sc))))
	}
	if limited {
		out = append(out, "the scale-up policies held back the replicas the metric asked for")
	}
	if len(out) == 0 {
		out = append(out, "the replicas ran past their capacity")
	}
	return out
}

func metricWindow(sc Scenario) time.Duration {
	if sc.Scaling.MetricWindow > 0 {
		return sc.Scaling.MetricWindow
	}
	return DefaultMetricWindow
}

func syncPeriod(sc Scenario) time.Duration {
	h := sc.Scaling.HPA
	if k := sc.Scaling.KEDA; k != nil {
		h = &k.HPA
	}
	if h != nil && h.SyncPeriod > 0 {
		return h.SyncPeriod
	}
	return 15 * time.Second
}

// inBreach reports whether t falls in a breached second.
func inBreach(s *Simulation, t time.Duration) bool {
	for _, b := range s.Breaches {
		if t >= b.From && t < b.To {
			return true
		}
	}
	return false
}

// peakUtilisation is the highest utilisation of any second.
func peakUtilisation(s *Simulation) float64 {
	var u float64
	for _, sec := range s.Seconds {
		u = max(u, sec.Utilisation)
	}
	return u
}
