package experiment

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/internal/aidemo"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// Plan is an experiment resolved and validated: every reference read,
// every default applied, every offset computed and every random decision
// made from the seed. The runner only follows it; `relia run --dry-run`
// prints it (Text).
type Plan struct {
	// Name and Description are the experiment's.
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	// Seed seeds every random decision; SeedFrom says where it came from:
	// "spec", "option" (relia run --seed) or "random".
	Seed     uint64 `json:"seed"`
	SeedFrom string `json:"seed_from"`
	// Target is the system under test.
	Target Target `json:"target"`
	// Proxies are the fault proxies the run creates.
	Proxies []Proxy `json:"proxies,omitempty"`
	// FaultServer is the control API of an external fault server, or
	// empty when the run starts one in-process.
	FaultServer string `json:"fault_server,omitempty"`
	// FaultServerSeed seeds the fault server's own decisions (toxicity
	// coin flips, jitter) when the run starts it.
	FaultServerSeed uint64 `json:"fault_server_seed"`
	// FaultLease is every fault's lease; the runner renews at a third of
	// it.
	FaultLease time.Duration `json:"fault_lease_ns"`
	// SLOs are the steady-state hypothesis, in the order the experiment
	// names them.
	SLOs []PlannedSLO `json:"slos"`
	// Phases run back to back from offset 0.
	Phases []PlannedPhase `json:"phases"`
	// Faults are every phase's faults in start order (by offset, then
	// name).
	Faults []PlannedFault `json:"faults"`
	// Aborts are the abort conditions.
	Aborts []PlannedAbort `json:"aborts,omitempty"`
	// Thresholds must hold over the whole run.
	Thresholds []PlannedThreshold `json:"thresholds,omitempty"`
	// Baseline is the phase the others are compared with; empty when
	// every phase has faults.
	Baseline string `json:"baseline,omitempty"`
	// Recovery has its defaults applied.
	Recovery Recovery `json:"recovery"`
	// Generator is the load generator's tolerance the spec sets; absent
	// when each phase's scenario keeps its own.
	Generator *PlannedGenerator `json:"generator,omitempty"`
	// Total is the planned length of the run.
	Total time.Duration `json:"total_ns"`
	// Decisions are the random choices made from the seed, in a fixed
	// order, so that two plans can be compared decision by decision.
	Decisions []Decision `json:"decisions"`
}

// PlannedSLO is one SLO of the hypothesis.
type PlannedSLO struct {
	ID        string  `json:"id"`
	Objective float64 `json:"objective"`
	// SLI describes what counts as good: "availability (good: ok)" or
	// "latency <= 200ms".
	SLI string `json:"sli"`
	// Measure is what the SLO counts in a run: empty for requests,
	// MeasureTTFT or MeasureGoodput.
	Measure string `json:"measure,omitempty"`
	// SLO is the spec; absent in a decoded journal.
	SLO *slo.SLO `json:"-"`
	// rec, during a run, is the recorder of the SLO's measure when it is
	// not the requests'.
	rec *outcome.Recorder
}

// PlannedPhase is one phase with its offsets from the start of the run.
type PlannedPhase struct {
	Name  string        `json:"name"`
	Start time.Duration `json:"start_ns"`
	End   time.Duration `json:"end_ns"`
	// Load is the phase's profile; Load.Scenario has the experiment's
	// default applied.
	Load Load `json:"load"`
	// Scenario is Load.Scenario resolved: the file (absolute, or relative
	// to the working directory) and the scenario's name, both empty when
	// the phase names no scenario and sends GET requests to the target.
	Scenario ScenarioRef `json:"scenario"`
	// LoadSeed seeds the phase's load (jitter, data picks, think times).
	LoadSeed uint64 `json:"load_seed"`
	// HasFaults reports whether any fault is active in the phase.
	HasFaults  bool               `json:"has_faults"`
	Thresholds []PlannedThreshold `json:"thresholds,omitempty"`
}

// ScenarioRef is a resolved `kind: Scenario` reference.
type ScenarioRef struct {
	File string `json:"file,omitempty"`
	Name string `json:"name,omitempty"`
}

// Fault kinds.
const (
	FaultToxic   = "toxic"
	FaultGateway = "gateway"
	FaultProcess = "process"
	// FaultProvider sets a fault of a simulated model provider of the
	// AI stack.
	FaultProvider = "provider"
)

// PlannedFault is one fault with its offsets from the start of the run.
type PlannedFault struct {
	Name  string `json:"name"`
	Phase string `json:"phase"`
	// Kind is FaultToxic, FaultGateway or FaultProcess.
	Kind string `json:"kind"`
	// Target is what the fault acts on: "proxy/payments",
	// "route/payments" or "service/catalog". Two faults on one target may
	// not overlap in time.
	Target string        `json:"target"`
	Start  time.Duration `json:"start_ns"`
	End    time.Duration `json:"end_ns"`
	// Seed seeds the fault's own decisions (a gateway fault's percentage).
	Seed uint64 `json:"seed"`
	// Replica is the replica a process fault acts on (given, or chosen
	// from the seed); -1 for other kinds.
	Replica int           `json:"replica"`
	Toxic   *ToxicFault   `json:"toxic,omitempty"`
	Gateway *GatewayFault `json:"gateway,omitempty"`
	Process *ProcessFault `json:"process,omitempty"`
	// Provider is a provider fault's; its Rate has the default applied.
	Provider *ProviderFault `json:"provider,omitempty"`
}

// Abort condition kinds.
const (
	AbortBurnRate  = "burn_rate"
	AbortThreshold = "threshold"
)

// PlannedAbort is an abort condition with its defaults applied.
type PlannedAbort struct {
	Name string `json:"name"`
	// Kind is AbortBurnRate or AbortThreshold.
	Kind string `json:"kind"`
	// SLO and Above are a burn-rate condition's.
	SLO   string  `json:"slo,omitempty"`
	Above float64 `json:"above,omitempty"`
	// Threshold is a threshold condition's.
	Threshold *PlannedThreshold `json:"threshold,omitempty"`
	Window    time.Duration     `json:"window_ns"`
	For       time.Duration     `json:"for_ns"`
	MinEvents int64             `json:"min_events"`
	// Phases limits the condition; empty means every phase.
	Phases []string `json:"phases,omitempty"`
}

// PlannedThreshold is a parsed k6-style threshold.
type PlannedThreshold struct {
	// Metric and Expr are as written: "http_req_duration", "p(99)<500".
	Metric string `json:"metric"`
	Expr   string `json:"expr"`
	// Parsed is the threshold; zero in a decoded journal.
	Parsed load.Threshold `json:"-"`
}

// String writes the threshold as `relia load --threshold` takes it.
func (t PlannedThreshold) String() string { return t.Metric + ":" + t.Expr }

// Decision is one random choice made from the seed.
type Decision struct {
	// What names the choice: "fault kill-catalog: replica".
	What string `json:"what"`
	// Value is the choice.
	Value string `json:"value"`
}

// Phase returns the phase named name.
func (p *Plan) Phase(name string) (PlannedPhase, bool) {
	return find(p.Phases, func(ph PlannedPhase) bool { return ph.Name == name })
}

// PhaseAt returns the index of the phase running at offset from the
// start of the run, or -1 outside the run.
func (p *Plan) PhaseAt(offset time.Duration) int {
	return slices.IndexFunc(p.Phases, func(ph PlannedPhase) bool { return offset >= ph.Start && offset < ph.End })
}

// SLO returns the planned SLO with the given id.
func (p *Plan) SLO(id string) (PlannedSLO, bool) {
	return find(p.SLOs, func(s PlannedSLO) bool { return s.ID == id })
}

// find returns the first element of xs that match accepts.
func find[T any](xs []T, match func(T) bool) (T, bool) {
	if i := slices.IndexFunc(xs, match); i >= 0 {
		return xs[i], true
	}
	var zero T
	return zero, false
}

// Text writes the plan for `relia run --dry-run`: the same plan always
// gives the same text, so two runs' plans can be diffed.
func (p *Plan) Text(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "experiment %s: %s in %d phases, seed %d (%s)\n", p.Name, fmtDur(p.Total), len(p.Phases), p.Seed, p.SeedFrom)
	if p.Description != "" {
		fmt.Fprintf(&b, "  %s\n", p.Description)
	}
	b.WriteString("\ntarget:\n")
	if p.Target.URL != "" {
		fmt.Fprintf(&b, "  url %s\n", p.Target.URL)
	}
	for _, s := range p.Target.Services {
		fmt.Fprintf(&b, "  service %s: %s\n", s.Name, describeService(s))
		if s.Shop != nil {
			fmt.Fprintf(&b, "  gateway: the relia gateway in front of the shop; the load goes through it\n")
			if p.FaultServer == "" {
				fmt.Fprintf(&b, "  proxy %s: in front of the shop's payment processor (http)\n", ShopProcessorProxy)
			}
		}
	}
	for _, px := range p.Proxies {
		fmt.Fprintf(&b, "  proxy %s: %s -> %s (%s)\n", px.Name, orDefault(px.Listen, "127.0.0.1:0"), px.Upstream, orDefault(px.Mode, "tcp"))
	}
	if p.FaultServer != "" {
		fmt.Fprintf(&b, "  fault server %s\n", p.FaultServer)
	} else {
		fmt.Fprintf(&b, "  fault server in-process, seed %d\n", p.FaultServerSeed)
	}
	fmt.Fprintf(&b, "  fault lease %s, renewed every %s\n", fmtDur(p.FaultLease), fmtDur(p.FaultLease/3))

	b.WriteString("\nSLOs:\n")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, s := range p.SLOs {
		sli := s.SLI
		if s.Measure != "" {
			sli += " of " + s.Measure
		}
		fmt.Fprintf(tw, "  %s\t%s\tobjective %s\n", s.ID, sli, config.Ratio(s.Objective))
	}
	tw.Flush()

	b.WriteString("\nphases:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, ph := range p.Phases {
		mark := ""
		if ph.Name == p.Baseline {
			mark = " (baseline)"
		}
		fmt.Fprintf(tw, "  %s\t%s-%s\t%s%s\t%s\n", ph.Name, fmtDur(ph.Start), fmtDur(ph.End), describeLoad(ph), mark, describeTraffic(ph))
	}
	tw.Flush()

	b.WriteString("\nfaults:\n")
	if len(p.Faults) == 0 {
		b.WriteString("  none\n")
	}
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, f := range p.Faults {
		fmt.Fprintf(tw, "  %s\t%s-%s\t%s\t%s\n", f.Name, fmtDur(f.Start), fmtDur(f.End), f.Target, describeFault(f))
	}
	tw.Flush()

	if len(p.Aborts) > 0 {
		b.WriteString("\nabort when:\n")
		for _, a := range p.Aborts {
			fmt.Fprintf(&b, "  %s: %s\n", a.Name, describeAbort(a))
		}
	}
	var th []string
	for _, t := range p.Thresholds {
		th = append(th, "  run: "+t.String())
	}
	for _, ph := range p.Phases {
		for _, t := range ph.Thresholds {
			th = append(th, "  "+ph.Name+": "+t.String())
		}
	}
	if len(th) > 0 {
		b.WriteString("\nthresholds:\n" + strings.Join(th, "\n") + "\n")
	}
	fmt.Fprintf(&b, "\nrecovery: SLI back within objective over %s, accepted within %s\n", fmtDur(p.Recovery.Window), fmtDur(p.Recovery.Bound))
	if g := p.Generator; g != nil {
		fmt.Fprintf(&b, "generator: inconclusive when more than %s of the requests leave over %s late\n",
			config.Ratio(1-g.MinOnTime), fmtDur(g.LateAfter))
	}
	b.WriteString("\ndecisions:\n")
	for _, d := range p.Decisions {
		fmt.Fprintf(&b, "  %s = %s\n", d.What, d.Value)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func describeService(s Service) string {
	if s.AI != nil {
		return "ai stack (assistant, relia's AI gateway, providers " + strings.Join(aidemo.Providers, " and ") + "), resilience " + onOff(!s.AI.DisableResilience)
	}
	if s.Shop != nil {
		mode := "resilience on"
		if s.Shop.DisableResilience {
			mode = "resilience off"
		}
		return fmt.Sprintf("demo shop, %d replicas per service, %s", s.Shop.Replicas, mode)
	}
	d := fmt.Sprintf("%s, %d replicas from port %d, health %s within %s",
		strings.Join(s.Command, " "), s.Replicas, s.Port, s.Health.Path, fmtDur(s.Health.Timeout))
	if a := s.Autoscale; a != nil {
		d += a.describe()
	}
	return d
}

func describeLoad(ph PlannedPhase) string {
	l := ph.Load
	var parts []string
	unit := "/s"
	switch {
	case l.VUs > 0:
		parts = append(parts, fmt.Sprintf("%d VUs", l.VUs))
		unit = " VUs"
	case l.Rate > 0 || len(l.Stages) == 0 && ph.Scenario.File == "":
		parts = append(parts, fmt.Sprintf("rate %g/s", l.Rate))
	}
	for _, s := range l.Stages {
		parts = append(parts, fmt.Sprintf("-> %g%s over %s", s.Target, unit, fmtDur(s.Duration)))
	}
	if l.MaxInFlight > 0 {
		parts = append(parts, fmt.Sprintf("max %d in flight", l.MaxInFlight))
	}
	if len(parts) == 0 {
		return "scenario's profile"
	}
	return strings.Join(parts, " ")
}

// describeTraffic is what a phase sends: its scenario, or its llm load.
func describeTraffic(ph PlannedPhase) string {
	l := ph.Load.LLM
	if l == nil {
		return describeScenario(ph.Scenario)
	}
	s := "llm streams to " + orDefault(l.Path, DefaultLLMPath)
	if len(l.Users) > 0 {
		s += " as " + strings.Join(l.Users, ", ")
	}
	return s
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func describeScenario(s ScenarioRef) string {
	switch {
	case s.File == "":
		return "GET target"
	case s.Name == "":
		return "scenario " + s.File
	}
	return "scenario " + s.File + "#" + s.Name
}

func describeFault(f PlannedFault) string {
	switch {
	case f.Toxic != nil:
		t := f.Toxic
		return fmt.Sprintf("toxic %s %s, %s, toxicity %s", t.Type, describeAttributes(t.Attributes), orDefault(t.Stream, "downstream"), t.Toxicity)
	case f.Gateway != nil:
		g := f.Gateway
		var what []string
		if g.Delay > 0 {
			what = append(what, "delay "+fmtDur(g.Delay))
		}
		if g.AbortStatus != 0 {
			what = append(what, fmt.Sprintf("abort %d", g.AbortStatus))
		}
		if g.ErrorFormat != "" {
			what = append(what, "as "+g.ErrorFormat)
		}
		if g.FirstByteDelay > 0 {
			what = append(what, "first byte "+fmtDur(g.FirstByteDelay))
		}
		if g.EventsPerSecond > 0 {
			what = append(what, fmt.Sprintf("%g events/s", g.EventsPerSecond))
		}
		for _, e := range []struct {
			verb string
			n    *int64
		}{{"stall", g.StallAfterEvents}, {"truncate", g.TruncateAfterEvents}, {"error event", g.ErrorAfterEvents}} {
			if e.n != nil {
				what = append(what, fmt.Sprintf("%s after %d events", e.verb, *e.n))
			}
		}
		if g.TruncateBody != nil {
			what = append(what, "truncate body at "+g.TruncateBody.String())
		}
		s := fmt.Sprintf("gateway %s on %s of requests", strings.Join(what, " + "), config.Ratio(g.Percentage))
		if len(g.Headers) > 0 {
			s += " with " + describeAttributes(stringMap(g.Headers))
		}
		return s
	case f.Process != nil:
		return fmt.Sprintf("process %s replica %d", f.Process.Action, f.Replica)
	case f.Provider != nil:
		return describeProviderFault(*f.Provider)
	}
	return "?"
}

func stringMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// describeAttributes writes a map in key order: {jitter: 50, latency: 300}.
func describeAttributes(m map[string]any) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %v", k, m[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func describeAbort(a PlannedAbort) string {
	var s string
	switch a.Kind {
	case AbortBurnRate:
		s = fmt.Sprintf("burn rate of %s above %g over %s (at least %d events)", a.SLO, a.Above, fmtDur(a.Window), a.MinEvents)
	case AbortThreshold:
		s = fmt.Sprintf("threshold %s fails over %s (at least %d events)", a.Threshold, fmtDur(a.Window), a.MinEvents)
	}
	if a.For > 0 {
		s += " for " + fmtDur(a.For)
	}
	if len(a.Phases) > 0 {
		s += " in " + strings.Join(a.Phases, ", ")
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fmtDur writes a duration as configs take it: "1m30s", "250ms".
func fmtDur(d time.Duration) string { return config.FormatDuration(d) }

// PlannedGenerator is the load generator's tolerance for itself, as the
// spec sets it for every phase (see Generator).
type PlannedGenerator struct {
	LateAfter time.Duration `json:"late_after_ns"`
	MinOnTime float64       `json:"min_on_time"`
}
