package experiment

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// GeneratorAdvice is what the user of an experiment can do about a load
// generator that could not keep its schedule.
const GeneratorAdvice = "lower the phases' rates, or run the experiment on a quieter host"

// GeneratorVerdict is the load generator's judgement of itself over a
// run (load.Health over every phase's load, one after the other), with
// each phase's punctuality and the per-second CPU figures. When it is not
// conclusive the run is inconclusive: the SLOs and thresholds are
// reported, not judged, because the lateness was relia's.
type GeneratorVerdict struct {
	load.Health
	// Phases are each phase's punctuality, in the plan's order.
	Phases []PhaseHealth `json:"phases"`
	// Samples are the generator's CPU use and the host's CPU pressure, per
	// second of the run.
	Samples []load.HealthSample `json:"samples"`
}

// PhaseHealth is how punctual the generator was in one phase.
type PhaseHealth struct {
	Name string `json:"name"`
	// Sent and Late count the phase's open-model requests and those sent
	// later than lateAfter; LagP99 is the 99th percentile of how late.
	Sent   int64         `json:"sent"`
	Late   int64         `json:"late"`
	LagP99 time.Duration `json:"lag_p99_ns"`
}

// generatorVerdict judges the generator over the phases' load results
// (nil for a phase whose load did not run).
func generatorVerdict(p *Plan, results []*load.Result) *GeneratorVerdict {
	var ran []*load.Result
	gv := &GeneratorVerdict{Phases: []PhaseHealth{}, Samples: []load.HealthSample{}}
	for i, res := range results {
		if res == nil {
			continue
		}
		ran = append(ran, res)
		h := res.Health()
		gv.Phases = append(gv.Phases, PhaseHealth{Name: p.Phases[i].Name, Sent: h.Sent, Late: h.Late, LagP99: h.LagP99})
		gv.Samples = append(gv.Samples, res.Generator.Samples...)
	}
	gv.Health = load.CombinedHealth(ran)
	if !gv.Conclusive {
		gv.Reason += "; " + GeneratorAdvice
	}
	return gv
}

// text is the generator's health in one line, with the phases in which
// it was late.
func (g *GeneratorVerdict) text() string {
	s := g.Text()
	for _, ph := range g.Phases {
		if ph.Late > 0 {
			s += fmt.Sprintf("; %s: %d of %d late, lag p99 %s", ph.Name, ph.Late, ph.Sent, outcome.FormatDuration(ph.LagP99))
		}
	}
	return s
}
