package experiment

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/internal/aidemo"
	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
	"github.com/relia-dev/relia/slo"
)

// The measures an SLO may count in a run besides requests.
const (
	// MeasureRequests is every request, as every SLO counts by default.
	MeasureRequests = "requests"
	// MeasureTTFT is one event per stream of an llm load that had a
	// first token, its latency the time to it from the request's due
	// time (llmload's llm_time_to_first_token).
	MeasureTTFT = "llm_time_to_first_token"
	// MeasureGoodput is one event per request of an llm load, good when
	// it met the load's goodput objectives (llmload's llm_goodput).
	MeasureGoodput = "llm_goodput"
)

// Defaults of an llm load.
const (
	DefaultLLMPath        = "/v1/chat/completions"
	DefaultLLMInputTokens = 32
	// llmGracefulStop is how long a phase's streams still open at its
	// end may take: the next phase's load has started by then.
	llmGracefulStop = 5 * time.Second
)

// aiService checks an ai service of the target and records the seeds of
// its providers as decisions.
func (r *resolver) aiService(path string, sv *Service) {
	if sv.AI.QuotaTokens < 0 {
		r.bad(path+".ai.quotaTokens", "%d is negative", sv.AI.QuotaTokens)
	}
	if sv.Replicas != 0 || sv.Port != 0 || len(sv.Env) > 0 || sv.Health != (Health{}) || sv.Autoscale != nil {
		r.bad(path, "replicas, port, env, health and autoscale apply to commands, not to the ai stack")
	}
	seed := DeriveSeed(r.plan.Seed, "ai")
	for _, name := range aidemo.Providers {
		r.plan.Decisions = append(r.plan.Decisions, Decision{"provider " + name + ": seed", strconv.FormatInt(aidemo.ProviderSeed(seed, name), 10)})
	}
}

// aiService returns the ai service of the target, or nil.
func (p *Plan) aiService() *Service {
	for i := range p.Target.Services {
		if p.Target.Services[i].AI != nil {
			return &p.Target.Services[i]
		}
	}
	return nil
}

// measure checks an SLO's measure against its SLI and returns it as the
// plan keeps it ("" for requests).
func (r *resolver) measure(path, m string, s *slo.SLO) string {
	switch m {
	case "", MeasureRequests:
		return ""
	case MeasureTTFT:
		if s.Spec.SLI.Latency == nil {
			r.bad(path, "%s counts latencies: SLO %s needs a latency SLI", m, s.ID())
		}
	case MeasureGoodput:
		if s.Spec.SLI.Availability == nil {
			r.bad(path, "%s counts good and other requests: SLO %s needs an availability SLI", m, s.ID())
		}
	default:
		r.bad(path, "%q is not a measure (want %s, %s or %s)", m, MeasureRequests, MeasureTTFT, MeasureGoodput)
	}
	return m
}

// llmLoad checks a phase's llm load.
func (r *resolver) llmLoad(path string, pp *PlannedPhase) {
	l := pp.Load.LLM
	if pp.Scenario.File != "" {
		r.bad(path, "an llm load sends model streams, not a scenario's requests: leave out scenario")
		pp.Scenario = ScenarioRef{}
	}
	if l.API != "" {
		if _, err := llmload.ParseAPI(l.API); err != nil {
			r.bad(path+".api", "%v", err)
		}
		if l.API == string(llmload.APIWebSocket) {
			r.bad(path+".api", "websocket streams are not supported in experiments")
		}
	}
	if l.Path != "" && !strings.HasPrefix(l.Path, "/") {
		r.bad(path+".path", "%q must start with /", l.Path)
	}
	if l.MaxTokens < 0 {
		r.bad(path+".maxTokens", "%d is negative", l.MaxTokens)
	}
	if l.InputTokens < 0 {
		r.bad(path+".inputTokens", "%d is negative", l.InputTokens)
	}
	if l.IdleTimeout < 0 {
		r.bad(path+".idleTimeout", "%s is negative", l.IdleTimeout)
	}
	if l.Goodput.TTFT < 0 || l.Goodput.TPOT < 0 || l.Goodput.E2E < 0 {
		r.bad(path+".goodput", "objectives may not be negative")
	}
	for i, u := range l.Users {
		if u == "" {
			r.bad(fmt.Sprintf("%s.users[%d]", path, i), "is empty")
		}
	}
	for i, st := range l.ExpectedStatuses {
		if st < 100 || st > 599 {
			r.bad(fmt.Sprintf("%s.expectedStatuses[%d]", path, i), "%d is not an HTTP status", st)
		}
	}
	if pp.Load.VUs > 0 && len(pp.Load.Stages) > 0 {
		r.bad(path, "an llm load's vus are constant: stages need a rate")
	}
}

// providerFault checks a provider fault and fills in its defaults.
func (r *resolver) providerFault(path string, pf *PlannedFault) {
	f := *pf.Provider
	if r.plan.aiService() == nil {
		r.bad(path, "provider faults act on the ai stack's providers; the target has no ai service")
	}
	if !slices.Contains(aidemo.Providers, f.Provider) {
		r.bad(path+".provider", "%q is not a provider of the ai stack (%s)", f.Provider, strings.Join(aidemo.Providers, ", "))
	}
	if f.Rate == 0 {
		f.Rate = 1
	}
	if err := mockFault(f).Validate(); err != nil {
		r.bad(path, "%v", err)
	}
	pf.Provider = &f
}

// describeProviderFault says what a provider fault does, for the plan.
func describeProviderFault(f ProviderFault) string {
	s := "provider " + f.Kind
	switch {
	case f.Kind == string(mock.FaultStatus):
		s += " " + strconv.Itoa(f.Status)
		if f.RetryAfter > 0 {
			s += " Retry-After " + fmtDur(f.RetryAfter)
		}
	case f.Kind == string(mock.FaultSlowFirstToken):
		s += " +" + fmtDur(f.Delay)
	default:
		s += fmt.Sprintf(" after %d tokens", f.AfterTokens)
	}
	return s + " on " + f.Rate.String() + " of requests"
}

// mockFault is a provider fault as the simulator takes it.
func mockFault(f ProviderFault) mock.Fault {
	return mock.Fault{Kind: mock.FaultKind(f.Kind), Status: f.Status, RetryAfter: f.RetryAfter, Rate: float64(f.Rate),
		AfterTokens: f.AfterTokens, Delay: f.Delay}
}

// applyProvider adds a provider fault to its simulator's; undoing it
// removes it and leaves the others. One fault's end and the next one's
// start on the same provider may come at the same moment: providerMu
// keeps each change whole.
func (r *faultRunner) applyProvider(f PlannedFault) (func() error, func(context.Context) error, error) {
	if r.target.ai == nil {
		return nil, nil, fmt.Errorf("provider faults need the ai stack, which this run did not start")
	}
	m := r.target.ai.Provider(f.Provider.Provider)
	if m == nil {
		return nil, nil, fmt.Errorf("the ai stack has no provider %q", f.Provider.Provider)
	}
	mf := mockFault(*f.Provider)
	r.providerMu.Lock()
	defer r.providerMu.Unlock()
	if err := m.SetFaults(append(m.Faults(), mf)); err != nil {
		return nil, nil, err
	}
	undo := func() error {
		r.providerMu.Lock()
		defer r.providerMu.Unlock()
		fs := m.Faults()
		if i := slices.Index(fs, mf); i >= 0 {
			fs = slices.Delete(fs, i, i+1)
		}
		return m.SetFaults(fs)
	}
	return undo, nil, nil
}

// startAI starts the embedded AI stack; the load goes to its assistant.
func (t *system) startAI(ctx context.Context, env targetEnv, svc Service) error {
	st, err := aidemo.Start(ctx, aidemo.Options{Seed: DeriveSeed(env.plan.Seed, "ai"), Clock: env.clock,
		Resilient: !svc.AI.DisableResilience, QuotaTokens: svc.AI.QuotaTokens})
	if err != nil {
		return fmt.Errorf("starting the ai stack: %w", err)
	}
	t.closers = append(t.closers, func() { _ = st.Close() })
	t.ai = st
	if t.url == "" {
		t.url = st.URL()
	}
	return nil
}

// llmOptions builds the llm load of phase ph against baseURL, before any
// traffic; its schedule is the phase's profile, as overrideLoad makes a
// scenario's.
func llmOptions(p *Plan, ph PlannedPhase, baseURL string) (llmload.Options, error) {
	l := ph.Load.LLM
	o := llmload.Options{URL: strings.TrimSuffix(baseURL, "/") + orDefault(l.Path, DefaultLLMPath), API: llmload.API(l.API),
		Model: l.Model, MaxTokens: l.MaxTokens, IdleTimeout: l.IdleTimeout, GracefulStop: llmGracefulStop,
		Goodput:     llmload.Objectives{TTFT: l.Goodput.TTFT, TPOT: l.Goodput.TPOT, E2E: l.Goodput.E2E},
		MaxInFlight: ph.Load.MaxInFlight}
	if len(l.Headers) > 0 {
		o.Header = http.Header{}
		for k, v := range l.Headers {
			o.Header.Set(k, v)
		}
	}
	input := l.InputTokens
	if input == 0 {
		input = DefaultLLMInputTokens
	}
	maxTokens := l.MaxTokens
	if maxTokens == 0 {
		maxTokens = llmload.DefaultMaxTokens
	}
	n := max(len(l.Users), 1)
	o.Prompts = llmload.Synthetic(ph.LoadSeed, n, llmload.Lengths{Mean: float64(input)}, llmload.Lengths{Mean: float64(maxTokens)})
	for i, u := range l.Users {
		b, _ := json.Marshal(u) // a string encodes
		o.Prompts[i].Params = map[string]json.RawMessage{"user": b}
	}
	if g := p.Generator; g != nil {
		o.LateAfter, o.MinOnTime = g.LateAfter, g.MinOnTime
		if g.MinOnTime == 0 {
			o.MinOnTime = -1 // off, as 0 means in the spec
		}
	}
	phase := ph.End - ph.Start
	if ph.Load.VUs > 0 {
		o.Concurrency, o.Duration = ph.Load.VUs, phase
		return o, nil
	}
	stages := make([]load.RateStage, 0, len(ph.Load.Stages)+1)
	var total time.Duration
	for _, st := range ph.Load.Stages {
		stages = append(stages, load.RateStage{Duration: st.Duration, Target: st.Target})
		total += st.Duration
	}
	if total < phase {
		last := ph.Load.Rate
		if len(stages) > 0 {
			last = stages[len(stages)-1].Target
		}
		stages = append(stages, load.RateStage{Duration: phase - total, Target: last})
	}
	sched, err := load.NewSchedule(ph.Load.Rate, stages)
	if err != nil {
		return o, err
	}
	o.Schedule = sched
	return o, nil
}

// llmRecorders are the recorders of the measures an llm load fills
// besides the run's requests recorder.
type llmRecorders struct {
	ttft, goodput *outcome.Recorder
	// tenants counts the calls of each user the loads name.
	tenants tenantTally
}

func newLLMRecorders() (*llmRecorders, error) {
	ttft, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		return nil, err
	}
	good, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		return nil, err
	}
	return &llmRecorders{ttft: ttft, goodput: good}, nil
}

// of returns the recorder of a measure, nil for requests.
func (m *llmRecorders) of(measure string) *outcome.Recorder {
	switch measure {
	case MeasureTTFT:
		return m.ttft
	case MeasureGoodput:
		return m.goodput
	}
	return nil
}

// observer is what an llm load tells of each request: the run's
// requests recorder (and the onsets) get the request as relia load llm
// records it, with the expected statuses counted as answered; the
// measures get its time to first token and whether it was good (an
// expected refusal is left out of goodput); the tenant its prompt names
// gets the call, served, refused by its quota or failed.
func (r *runState) observer(l *LLMLoad) func(*llmload.Sample) {
	obj := llmload.Objectives{TTFT: l.Goodput.TTFT, TPOT: l.Goodput.TPOT, E2E: l.Goodput.E2E}
	return func(s *llmload.Sample) {
		if s.Prompt >= 0 && s.Prompt < len(l.Users) {
			r.measures.tenants.observe(l.Users[s.Prompt], s)
		}
		out := s.Outcome()
		expected := s.Ending == llmload.EndStatus && slices.Contains(l.ExpectedStatuses, s.Status)
		if expected {
			out.Class = outcome.ClassOK
		}
		r.rec.Record(out)
		r.onsets.Observe(out)
		if t, ok := s.TTFTOutcome(); ok {
			r.measures.ttft.Record(t)
		}
		if expected {
			return // refused by design: not a request the service failed to serve well, nor one it served
		}
		g := outcome.Outcome{Start: s.Due, Latency: out.Latency, Status: s.Status, Class: s.Class}
		if s.Class == outcome.ClassOK && !obj.Good(s) {
			g.Class = outcome.ClassCheck // answered, but it missed an objective
		}
		r.measures.goodput.Record(g)
	}
}

// runLLM runs phase i's llm load from the phase's start.
func (r *runState) runLLM(ctx context.Context, i int) {
	ph := r.plan.Phases[i]
	if sleepUntil(ctx, r.clock, r.start.Add(ph.Start)) != nil {
		return
	}
	o := r.llm[i]
	o.Clock, o.Observe = r.clock, r.observer(ph.Load.LLM)
	res, err := llmload.Run(ctx, o)
	if err != nil {
		r.log.Error("phase load failed", "phase", ph.Name, "error", err)
		r.end(EndRolledBackError, fmt.Errorf("phase %s: %w", ph.Name, err), nil)
		return
	}
	r.results[i] = &load.Result{Model: res.Load, LateAfter: res.LateAfter, MinOnTime: res.MinOnTime, Requests: res.Requests,
		Lag: res.ScheduleLag, Generator: res.Generator}
}

// bindMeasures returns a copy of p whose SLOs count their measures'
// recorders.
func (p *Plan) bindMeasures(m *llmRecorders) *Plan {
	c := *p
	c.SLOs = slices.Clone(p.SLOs)
	for i := range c.SLOs {
		c.SLOs[i].rec = m.of(c.SLOs[i].Measure)
	}
	return &c
}

// recorder is the recorder the SLO counts: its measure's, or rec.
func (s PlannedSLO) recorder(rec *outcome.Recorder) *outcome.Recorder {
	if s.rec != nil {
		return s.rec
	}
	return rec
}

// llmCharts are the charts of the llm measures: time to first token
// (p50 and p99 per second) and goodput (good requests and all ended
// ones per second), by due time; none when the run had no llm load.
func llmCharts(p *Plan, from, to time.Time) []report.Chart {
	var ttft, good *outcome.Recorder
	for _, s := range p.SLOs {
		switch {
		case s.Measure == MeasureTTFT && s.rec != nil:
			ttft = s.rec
		case s.Measure == MeasureGoodput && s.rec != nil:
			good = s.rec
		}
	}
	var charts []report.Chart
	note := "By due time: each request counts in the second it was due."
	if ttft != nil {
		p50, p99 := report.Series{Name: "p50", Color: "blue", Step: time.Second, Steps: true}, report.Series{Name: "p99", Color: "orange", Step: time.Second, Steps: true}
		for b := range ttft.Buckets() {
			if b.From.Before(alignDown(from, time.Second)) || !b.From.Before(to) || b.Latency.Count() == 0 {
				continue
			}
			p50.Points = append(p50.Points, report.Point{T: b.From, V: ms(b.Latency.Quantile(0.5))})
			p99.Points = append(p99.Points, report.Point{T: b.From, V: ms(b.Latency.Quantile(0.99))})
		}
		var lines []report.Line
		for _, s := range p.SLOs {
			if s.Measure == MeasureTTFT && s.SLO != nil {
				lines = append(lines, report.Line{Label: s.ID, V: ms(s.SLO.Spec.SLI.Latency.Threshold), Color: "red"})
			}
		}
		charts = append(charts, report.Chart{Title: "Time to first token", Unit: "ms", Series: []report.Series{p50, p99}, Lines: lines, ScaleToggle: true, Note: note})
	}
	if good != nil {
		all, ok := report.Series{Name: "requests ended", Color: "grey", Step: time.Second, Steps: true, Reduce: report.ReduceMean},
			report.Series{Name: "goodput", Color: "green", Step: time.Second, Steps: true, Reduce: report.ReduceMean}
		for b := range good.Buckets() {
			if b.From.Before(alignDown(from, time.Second)) || !b.From.Before(to) {
				continue
			}
			all.Points = append(all.Points, report.Point{T: b.From, V: float64(b.Sent())})
			ok.Points = append(ok.Points, report.Point{T: b.From, V: float64(b.ByClass[outcome.ClassOK])})
		}
		charts = append(charts, report.Chart{Title: "Goodput", Unit: "req/s", Series: []report.Series{all, ok}, Note: note +
			" Goodput: the requests that ended well and met every objective of their load."})
	}
	return charts
}
