package experiment

import (
	"fmt"
	"slices"
	"time"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
)

// phaseTests builds every phase's load test against baseURL, before any
// traffic, so that a scenario the load generator rejects is bad input.
// shopScenario is the demo shop's own scenario, used by phases that name
// none when the run starts the shop; nil otherwise.
func phaseTests(p *Plan, baseURL string, shopScenario []byte) ([]*load.Test, error) {
	tests := make([]*load.Test, len(p.Phases))
	for i, ph := range p.Phases {
		if ph.Load.LLM != nil {
			continue // an llm load: llmOptions
		}
		sc, err := phaseScenario(p, ph, baseURL, shopScenario)
		if err != nil {
			return nil, inputErrorf("phase %s: %w", ph.Name, err)
		}
		overrideLoad(&sc.Spec, ph)
		if g := p.Generator; g != nil {
			sc.Spec.Load.LateAfter = g.LateAfter
			sc.Spec.Load.MinOnTime = load.OptionalRatio{Ratio: config.Ratio(g.MinOnTime), Set: true}
		}
		sc.Spec.BaseURL = baseURL
		sc.Spec.Seed = ph.LoadSeed
		// The experiment judges thresholds over its own recorder; the
		// scenario's would stop a phase's load (abortOnFail) behind the
		// runner's back.
		sc.Spec.Thresholds = nil
		if tests[i], err = sc.Build(); err != nil {
			return nil, inputErrorf("phase %s: scenario %s: %w", ph.Name, orDefault(ph.Scenario.File, "(default)"), err)
		}
	}
	return tests, nil
}

// phaseScenario reads the scenario a phase sends: the one it names, the
// demo shop's, or GET requests to the target.
func phaseScenario(p *Plan, ph PlannedPhase, baseURL string, shopScenario []byte) (*load.Scenario, error) {
	name, data := "", []byte(nil)
	var scs []*load.Scenario
	var err error
	switch {
	case ph.Scenario.File != "":
		scs, err = load.ReadScenarios(ph.Scenario.File)
		name = ph.Scenario.Name
	case shopScenario != nil:
		scs, err = load.ParseScenarios("shop-scenario.yaml", shopScenario)
	default:
		data = fmt.Appendf(nil, "kind: Scenario\nversion: relia/v1\nmetadata: {name: %s}\nspec:\n  requests:\n    - {name: get, path: %q}\n  load: {rate: 1, duration: 1s}\n",
			p.Name, baseURL)
		scs, err = load.ParseScenarios("target.yaml", data)
	}
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(scs, func(s *load.Scenario) bool { return name == "" || s.Metadata.Name == name })
	if i < 0 {
		return nil, fmt.Errorf("%s has no scenario %q", ph.Scenario.File, name)
	}
	return scs[i], nil
}

// overrideLoad replaces the scenario's load profile with the phase's,
// when the phase gives one, so that the load lasts exactly the phase: a
// last stage holds the final target until the phase ends.
func overrideLoad(s *load.ScenarioSpec, ph PlannedPhase) {
	l := ph.Load
	if l.Rate == 0 && l.VUs == 0 && len(l.Stages) == 0 {
		return
	}
	old := s.Load
	s.Load = load.LoadSpec{GracefulStop: old.GracefulStop, LateAfter: old.LateAfter, MinOnTime: old.MinOnTime, MaxInFlight: l.MaxInFlight}
	if l.VUs > 0 {
		vus := l.VUs
		s.Load.VUs = &vus
	} else {
		rate := l.Rate
		s.Load.Rate = &rate
	}
	phase := ph.End - ph.Start
	if len(l.Stages) == 0 {
		s.Load.Duration = phase
		return
	}
	var total time.Duration
	for _, st := range l.Stages {
		s.Load.Stages = append(s.Load.Stages, load.Stage{Duration: st.Duration, Target: st.Target})
		total += st.Duration
	}
	if total < phase {
		s.Load.Stages = append(s.Load.Stages, load.Stage{Duration: phase - total, Target: l.Stages[len(l.Stages)-1].Target})
	}
}
