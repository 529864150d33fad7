package capacity

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/internal/shop"
	"github.com/relia-dev/relia/slo"
)

// TrafficFromPlan is the arrival rate of an experiment's phases as a
// traffic curve: each phase's rate, moved linearly through its stages,
// held to the phase's end. Phases of the closed model (VUs) have no
// arrival rate and are an error; so are phases that keep their
// scenario's own profile. DemoPlan's phases give the Black Friday spike
// of relia demo.
func TrafficFromPlan(p *experiment.Plan) (Traffic, error) {
	var tr Traffic
	for _, ph := range p.Phases {
		l := ph.Load
		if l.VUs > 0 {
			return nil, fmt.Errorf("phase %s runs virtual users (the closed model): it has no arrival rate to replay", ph.Name)
		}
		if l.Rate == 0 && len(l.Stages) == 0 {
			return nil, fmt.Errorf("phase %s keeps its scenario's own load profile: give it a rate to replay it", ph.Name)
		}
		at, rate := ph.Start, l.Rate
		tr = append(tr, RatePoint{At: at, Rate: rate})
		for _, s := range l.Stages {
			at += s.Duration
			if at > ph.End {
				// the phase cuts the stage: the rate where it stops
				frac := float64(ph.End-(at-s.Duration)) / float64(s.Duration)
				tr = append(tr, RatePoint{At: ph.End, Rate: rate + (s.Target-rate)*frac})
				rate = tr[len(tr)-1].Rate
				at = ph.End
				break
			}
			rate = s.Target
			tr = append(tr, RatePoint{At: at, Rate: rate})
		}
		if at < ph.End {
			tr = append(tr, RatePoint{At: ph.End, Rate: rate})
		}
	}
	if err := tr.Validate(); err != nil {
		return nil, err
	}
	return tr, nil
}

// BlackFriday is the traffic of relia demo's "Black Friday" experiment at
// its defaults in requests per second: a baseline, a 10x spike, and the
// load of the fault phases after it, scaled by rate (the baseline in
// requests per second; 0 means the demo's: its users a second times the
// requests each user's journey sends, shop.RequestsPerUser) and stretched
// to duration (0 means the demo's minute).
func BlackFriday(rate int, duration time.Duration) (Traffic, error) {
	seed := uint64(1)
	p, err := experiment.DemoPlan(experiment.DemoOptions{Duration: duration, Seed: &seed})
	if err != nil {
		return nil, err
	}
	tr, err := TrafficFromPlan(p)
	if err != nil {
		return nil, err
	}
	// The demo's arrivals are users walking journeys; capacity is counted
	// in requests.
	scale := shop.RequestsPerUser
	if rate > 0 {
		scale = float64(rate) / float64(experiment.DefaultDemoRate)
	}
	for i := range tr {
		tr[i].Rate *= scale
	}
	return tr, nil
}

// Proved is a run of an autoscaled service (relia run with a service's
// autoscale section) judged second by second as Simulate judges the
// simulation, so that the two can be set side by side.
type Proved struct {
	Record *experiment.ScalingRecord `json:"-"`
	// Start is the run's start: offset 0 of Seconds and of the traffic.
	Start   time.Time      `json:"start"`
	Seconds []ProvedSecond `json:"seconds"`
	// Breaches and BreachTime are as in Simulation.
	Breaches   []Breach                 `json:"breaches"`
	BreachTime map[string]time.Duration `json:"breach_time_ns"`
}

// ProvedSecond is one second of the proved run.
type ProvedSecond struct {
	At       time.Duration      `json:"at_ns"`
	Replicas int                `json:"replicas"`
	Ready    int                `json:"ready"`
	Requests int64              `json:"requests"`
	P99      time.Duration      `json:"p99_ns"`
	SLIs     map[string]float64 `json:"slis"`
	Breached []string           `json:"breached,omitempty"`
}

// TotalBreach is the number of seconds in which any SLO was missed.
func (p *Proved) TotalBreach() time.Duration {
	return breachedSeconds(p.Seconds, func(s ProvedSecond) []string { return s.Breached })
}

// ReadProved reads an autoscaled service's scaling record and the journal
// from a run's output folder.
func ReadProved(dir, service string) (*experiment.ScalingRecord, *experiment.Journal, error) {
	f, err := os.Open(filepath.Join(dir, experiment.ScalingFile(service)))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rec, err := experiment.DecodeScaling(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	jf, err := os.Open(filepath.Join(dir, experiment.JournalFile))
	if err != nil {
		return nil, nil, err
	}
	defer jf.Close()
	j, err := experiment.DecodeJournal(jf)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", jf.Name(), err)
	}
	return rec, j, nil
}

// Prove judges a proved run from start to end, one second at a time, by
// the SLOs (slo.Evaluate over the requests its gateway proxied).
func Prove(rec *experiment.ScalingRecord, start, end time.Time, slos []*slo.SLO) (*Proved, error) {
	p := &Proved{Record: rec, Start: start, BreachTime: map[string]time.Duration{}}
	byAt := map[time.Time]experiment.ScalingSecond{}
	for _, s := range rec.Seconds {
		byAt[s.At] = s
	}
	var secs []Second // to reuse breaches()
	for t := start; t.Before(end); t = t.Add(time.Second) {
		w := rec.Requests.Window(t, t.Add(time.Second))
		ps := ProvedSecond{At: t.Sub(start), Requests: w.Total, P99: w.Latency.Quantile(0.99), SLIs: map[string]float64{}}
		// the replicas at the end of the second
		if s, ok := byAt[t.Add(time.Second)]; ok {
			ps.Replicas, ps.Ready = s.Replicas, s.Ready
		}
		for _, s := range slos {
			ev, err := slo.Evaluate(s, rec.Requests, t, t.Add(time.Second))
			if err != nil {
				return nil, fmt.Errorf("judging the proved run: %w", err)
			}
			ps.SLIs[ev.ID] = ev.SLI
			if !ev.Met {
				ps.Breached = append(ps.Breached, ev.ID)
			}
		}
		p.Seconds = append(p.Seconds, ps)
		secs = append(secs, Second{At: ps.At, Breached: ps.Breached})
	}
	p.Breaches = breaches(secs)
	for _, b := range p.Breaches {
		p.BreachTime[b.SLO] += b.To - b.From
	}
	return p, nil
}

// ProvedScenario is the simulation of a proved run: the run's traffic
// (from its plan's phases), the replica model, and the autoscaler as the
// run configured it, its syncs falling where the run's fell.
func ProvedScenario(rec *experiment.ScalingRecord, p *experiment.Plan, start time.Time, replica Replica, slos []*slo.SLO) (Scenario, error) {
	tr, err := TrafficFromPlan(p)
	if err != nil {
		return Scenario{}, err
	}
	as := rec.Autoscale
	h := as.HPA()
	replica.StartupDelay = as.StartupDelay
	replica.Timeout = as.Timeout
	sc := Scenario{Traffic: tr, Replica: replica, SLOs: slos, Duration: p.Total,
		Scaling: Scaling{HPA: &h, MetricWindow: as.MetricWindow, Balance: as.Balance}}
	for _, s := range rec.Syncs {
		if !s.Before(start) {
			sc.Scaling.SyncOffset = s.Sub(start) % as.SyncPeriod
			break
		}
	}
	return sc, nil
}
