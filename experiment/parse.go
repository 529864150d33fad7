package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/shop"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// Options configure how an experiment is resolved into a Plan. The zero
// value is valid.
type Options struct {
	// Seed, when set, replaces the experiment's seed (relia run --seed).
	Seed *uint64
	// Dir is the directory references (SLO files, scenarios) are
	// relative to; default the experiment file's directory.
	Dir string
	// RandomSeed picks the seed of an experiment that names none; nil
	// means RandomSeed.
	RandomSeed func() uint64
}

// ShopServices are the services of the embedded demo shop that process
// faults may name when the target has a shop service.
var ShopServices = []string{"catalog", "users", "payments", "recommendations"}

// DefaultShopReplicas is the number of replicas of each demo shop
// service.
const DefaultShopReplicas = 2

// ReadFile reads the experiment in the file at path and resolves it into
// a Plan (see Parse).
func ReadFile(path string, opts Options) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading experiment: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse reads the one `kind: Experiment` document in data (other
// documents of the file may be the SLOs it references), validates it and
// resolves it into a Plan: SLO and scenario references are read,
// defaults applied, offsets computed and random decisions made. Nothing
// is started and nothing is sent. Every problem is reported, each as a
// *config.Error naming file:line:col and the field; name is the file's
// name, used in errors and as the base of relative references.
func Parse(name string, data []byte, opts Options) (*Plan, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var found []config.Document
	for _, d := range docs {
		if d.Kind == Kind {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("%s: no document of kind: %s", name, Kind)
	case 1:
	default:
		return nil, found[1].Errorf("kind", "a file holds one experiment; the first is on line %d", found[0].Node.Line)
	}
	e := &Experiment{doc: found[0]}
	if err := e.doc.Decode(e); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		opts.Dir = filepath.Dir(name)
	}
	r := &resolver{e: e, opts: opts, file: name, data: data}
	p := r.resolve()
	if len(r.errs) > 0 {
		return nil, errors.Join(r.errs...)
	}
	return p, nil
}

// resolver validates an experiment and builds its plan, collecting every
// problem it finds.
type resolver struct {
	e    *Experiment
	opts Options
	file string
	data []byte
	errs []error
	plan *Plan
}

func (r *resolver) bad(path, format string, args ...any) {
	r.errs = append(r.errs, r.e.doc.Errorf(path, format, args...))
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (r *resolver) checkName(path, name string) {
	if !nameRE.MatchString(name) {
		r.bad(path, "%q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", name)
	}
}

func (r *resolver) resolve() *Plan {
	e, s := r.e, &r.e.Spec
	p := &Plan{Name: e.Metadata.Name, Description: s.Description, Labels: e.Metadata.Labels, FaultServer: s.FaultServer}
	r.plan = p
	r.checkName("metadata.name", e.Metadata.Name)
	switch {
	case r.opts.Seed != nil:
		p.Seed, p.SeedFrom = *r.opts.Seed, "option"
	case s.Seed != nil:
		p.Seed, p.SeedFrom = *s.Seed, "spec"
	default:
		pick := r.opts.RandomSeed
		if pick == nil {
			pick = RandomSeed
		}
		p.Seed, p.SeedFrom = pick(), "random"
	}
	p.Decisions = append(p.Decisions, Decision{"seed", strconv.FormatUint(p.Seed, 10)})
	r.target()
	r.proxies()
	r.faultServer()
	r.slos()
	r.phases()
	r.faults()
	r.baseline()
	r.aborts()
	p.Thresholds = r.thresholds("spec.thresholds", s.Thresholds)
	p.Recovery = s.Recovery
	if p.Recovery.Window == 0 {
		p.Recovery.Window = DefaultRecoveryWindow
	}
	if p.Recovery.Bound == 0 {
		p.Recovery.Bound = DefaultRecoveryBound
	}
	if g := s.Generator; g.LateAfter != 0 || g.MinOnTime.Set {
		if g.LateAfter < 0 {
			r.bad("spec.generator.lateAfter", "%s is negative", g.LateAfter)
		}
		p.Generator = &PlannedGenerator{LateAfter: g.LateAfter, MinOnTime: load.DefaultMinOnTime}
		if g.LateAfter == 0 {
			p.Generator.LateAfter = load.DefaultLateAfter
		}
		if g.MinOnTime.Set {
			p.Generator.MinOnTime = float64(g.MinOnTime.Ratio)
		}
	}
	return p
}

func (r *resolver) target() {
	t := r.e.Spec.Target
	if t.URL == "" && len(t.Services) == 0 {
		r.bad("spec.target", "needs a url, services, or both")
	}
	if t.URL != "" {
		if err := checkHTTPURL(t.URL); err != nil {
			r.bad("spec.target.url", "%v", err)
		}
	}
	seen := map[string]bool{}
	for i := range t.Services {
		sv := &t.Services[i]
		path := fmt.Sprintf("spec.target.services[%d]", i)
		r.checkName(path+".name", sv.Name)
		if seen[sv.Name] {
			r.bad(path+".name", "service %q is named twice", sv.Name)
		}
		seen[sv.Name] = true
		switch {
		case sv.AI != nil && (sv.Shop != nil || len(sv.Command) > 0):
			r.bad(path, "give one of shop, ai and command")
		case sv.AI != nil:
			r.aiService(path, sv)
		case sv.Shop != nil && len(sv.Command) > 0:
			r.bad(path, "give shop or command, not both")
		case sv.Shop != nil:
			if sv.Shop.Replicas < 0 {
				r.bad(path+".shop.replicas", "%d is negative", sv.Shop.Replicas)
			}
			if sv.Shop.Replicas == 0 {
				sv.Shop.Replicas = DefaultShopReplicas
			}
			if sv.Replicas != 0 || sv.Port != 0 || len(sv.Env) > 0 || sv.Health != (Health{}) {
				r.bad(path, "replicas, port, env and health apply to commands; the shop takes shop.replicas")
			}
		case len(sv.Command) == 0:
			r.bad(path, "needs shop, ai or command")
		default:
			if sv.Replicas < 0 {
				r.bad(path+".replicas", "%d is negative", sv.Replicas)
			}
			if sv.Replicas == 0 {
				sv.Replicas = 1
			}
			if sv.Port <= 0 || sv.Port+sv.Replicas-1 > 65535 {
				r.bad(path+".port", "needs a port (1 to %d, replica i listening on port+i): the health check asks it", 65536-max(sv.Replicas, 1))
			}
			if sv.Health.Path == "" {
				sv.Health.Path = DefaultHealthPath
			} else if !strings.HasPrefix(sv.Health.Path, "/") {
				r.bad(path+".health.path", "%q must start with /", sv.Health.Path)
			}
			if sv.Health.Timeout == 0 {
				sv.Health.Timeout = DefaultHealthTimeout
			}
			if sv.Autoscale != nil {
				r.autoscale(path, sv)
			}
		}
	}
	r.plan.Target = t
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL with a host", s)
	}
	return nil
}

func (r *resolver) proxies() {
	seen := map[string]bool{}
	for i, px := range r.e.Spec.Proxies {
		path := fmt.Sprintf("spec.proxies[%d]", i)
		r.checkName(path+".name", px.Name)
		if seen[px.Name] {
			r.bad(path+".name", "proxy %q is named twice", px.Name)
		}
		if px.Name == ShopProcessorProxy && r.shopService() != nil {
			r.bad(path+".name", "%q is the proxy the run puts in front of the demo shop's payment processor; name this one otherwise", px.Name)
		}
		seen[px.Name] = true
		if px.Mode != "" && px.Mode != "tcp" && px.Mode != "http" {
			r.bad(path+".mode", "%q is not a proxy mode (tcp or http)", px.Mode)
		}
		if px.Listen != "" {
			if _, _, err := net.SplitHostPort(px.Listen); err != nil {
				r.bad(path+".listen", "%q is not host:port", px.Listen)
			}
		}
		if _, port, err := net.SplitHostPort(px.Upstream); err != nil || port == "" {
			r.bad(path+".upstream", "%q is not host:port", px.Upstream)
		}
	}
	r.plan.Proxies = r.e.Spec.Proxies
}

func (r *resolver) faultServer() {
	s, p := &r.e.Spec, r.plan
	if s.FaultServer != "" {
		if err := checkHTTPURL(s.FaultServer); err != nil {
			r.bad("spec.faultServer", "%v", err)
		}
	} else {
		p.FaultServerSeed = DeriveSeed(p.Seed, "fault-server")
		p.Decisions = append(p.Decisions, Decision{"fault server: seed", strconv.FormatUint(p.FaultServerSeed, 10)})
	}
	p.FaultLease = s.FaultLease
	switch {
	case p.FaultLease == 0:
		p.FaultLease = DefaultFaultLease
	case p.FaultLease < 3*time.Second || p.FaultLease > fault.MaxLeaseTTL:
		r.bad("spec.faultLease", "%s is not within [3s, %s]: the runner renews at a third of it", fmtDur(p.FaultLease), fmtDur(fault.MaxLeaseTTL))
	}
}

func (r *resolver) slos() {
	s := &r.e.Spec
	if len(s.SLOs) == 0 {
		r.bad("spec.slos", "needs at least one SLO: the SLOs are the steady-state hypothesis")
	}
	var own []*slo.SLO // SLO documents of the experiment's own file, read once
	ownRead := false
	files := map[string][]*slo.SLO{}
	var all []*slo.SLO
	measures := map[*slo.SLO]string{}
	for i, ref := range s.SLOs {
		path := fmt.Sprintf("spec.slos[%d]", i)
		n := len(all)
		r.sloRef(path, ref, &all, files, &own, &ownRead)
		for _, sl := range all[n:] {
			measures[sl] = r.measure(path+".measure", ref.Measure, sl)
		}
	}
	seen := map[string]bool{}
	for _, sl := range all {
		if seen[sl.ID()] {
			r.bad("spec.slos", "SLO %s is named twice", sl.ID())
			continue
		}
		seen[sl.ID()] = true
		r.plan.SLOs = append(r.plan.SLOs, PlannedSLO{ID: sl.ID(), Objective: float64(sl.Spec.Objective), SLI: describeSLI(sl), Measure: measures[sl], SLO: sl})
	}
}

// sloRef appends the SLOs one reference of spec.slos names to all.
func (r *resolver) sloRef(path string, ref SLORef, all *[]*slo.SLO, files map[string][]*slo.SLO, own *[]*slo.SLO, ownRead *bool) {
	switch {
	case ref.Inline != nil && (ref.File != "" || ref.ID != ""):
		r.bad(path, "give inline, or file and id, not both")
	case ref.Inline != nil:
		if err := ref.Inline.Validate(); err != nil {
			r.bad(path+".inline", "%v", err)
			return
		}
		*all = append(*all, ref.Inline)
	case ref.File != "":
		got, ok := files[ref.File]
		if !ok {
			var err error
			got, err = slo.ReadFiles(r.ref(ref.File))
			if err != nil {
				r.bad(path+".file", "%v", err)
			}
			files[ref.File] = got
		}
		if len(got) == 0 {
			return // reported when the file was read
		}
		if ref.ID == "" {
			*all = append(*all, got...)
			return
		}
		if sl := findSLO(got, ref.ID); sl != nil {
			*all = append(*all, sl)
		} else {
			r.bad(path+".id", "no SLO %q in %s (it has %s)", ref.ID, ref.File, sloIDs(got))
		}
	case ref.ID != "":
		if !*ownRead {
			*ownRead = true
			var err error
			*own, err = slo.Parse(r.file, r.data)
			if err != nil && !strings.Contains(err.Error(), "no SLOs") {
				r.errs = append(r.errs, err)
			}
		}
		if sl := findSLO(*own, ref.ID); sl != nil {
			*all = append(*all, sl)
		} else {
			have := "no SLO documents"
			if len(*own) > 0 {
				have = sloIDs(*own)
			}
			r.bad(path+".id", "no SLO %q in this file (it has %s); name a file with file:", ref.ID, have)
		}
	default:
		r.bad(path, "needs inline, file, or id")
	}
}

func findSLO(slos []*slo.SLO, id string) *slo.SLO {
	s, _ := find(slos, func(s *slo.SLO) bool { return s.ID() == id })
	return s
}

func sloIDs(slos []*slo.SLO) string {
	ids := make([]string, len(slos))
	for i, s := range slos {
		ids[i] = s.ID()
	}
	return strings.Join(ids, ", ")
}

func describeSLI(s *slo.SLO) string {
	switch sli := s.Spec.SLI; {
	case sli.Latency != nil:
		return "latency <= " + fmtDur(sli.Latency.Threshold)
	case sli.Availability != nil:
		good := sli.Availability.GoodClasses
		if len(good) == 0 {
			good = []string{outcome.ClassOK.String()}
		}
		return "availability (good: " + strings.Join(good, ", ") + ")"
	}
	return "?"
}

// ref returns a reference's path: relative ones are relative to the
// experiment's directory.
func (r *resolver) ref(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(r.opts.Dir, p)
}

func (r *resolver) phases() {
	s, p := &r.e.Spec, r.plan
	if len(s.Phases) == 0 {
		r.bad("spec.phases", "needs at least one phase")
	}
	seen := map[string]bool{}
	var at time.Duration
	for i, ph := range s.Phases {
		path := fmt.Sprintf("spec.phases[%d]", i)
		r.checkName(path+".name", ph.Name)
		if seen[ph.Name] {
			r.bad(path+".name", "phase %q is named twice", ph.Name)
		}
		seen[ph.Name] = true
		if ph.Duration <= 0 {
			r.bad(path+".duration", "must be positive")
		}
		pp := PlannedPhase{Name: ph.Name, Start: at, End: at + ph.Duration, Load: ph.Load, HasFaults: len(ph.Faults) > 0}
		at += ph.Duration
		scenarioField := path + ".load.scenario"
		if pp.Load.Scenario == "" {
			pp.Load.Scenario, scenarioField = s.Scenario, "spec.scenario"
		}
		r.load(path+".load", scenarioField, ph.Duration, &pp)
		if pp.Load.LLM != nil {
			r.llmLoad(path+".load.llm", &pp)
		}
		pp.LoadSeed = DeriveSeed(p.Seed, "load/"+ph.Name)
		p.Decisions = append(p.Decisions, Decision{"phase " + ph.Name + ": load seed", strconv.FormatUint(pp.LoadSeed, 10)})
		pp.Thresholds = r.thresholds(path+".thresholds", ph.Thresholds)
		p.Phases = append(p.Phases, pp)
	}
	p.Total = at
}

func (r *resolver) load(path, scenarioField string, phase time.Duration, pp *PlannedPhase) {
	l := pp.Load
	if l.Scenario != "" {
		pp.Scenario = r.scenario(scenarioField, l.Scenario)
	}
	if math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) || l.Rate < 0 {
		r.bad(path+".rate", "%v is not a rate >= 0", l.Rate)
	}
	if l.VUs < 0 {
		r.bad(path+".vus", "%d is negative", l.VUs)
	}
	if l.VUs > 0 && l.Rate > 0 {
		r.bad(path+".vus", "give rate (open model) or vus (closed model), not both")
	}
	if l.MaxInFlight < 0 {
		r.bad(path+".maxInFlight", "%d is negative", l.MaxInFlight)
	}
	if l.MaxInFlight > 0 && l.VUs > 0 {
		r.bad(path+".maxInFlight", "caps the open model; with vus the VUs are the cap")
	}
	var total time.Duration
	for j, st := range l.Stages {
		sp := fmt.Sprintf("%s.stages[%d]", path, j)
		if st.Duration <= 0 {
			r.bad(sp+".duration", "must be positive")
		}
		if math.IsNaN(st.Target) || math.IsInf(st.Target, 0) || st.Target < 0 {
			r.bad(sp+".target", "%v is not a target >= 0", st.Target)
		}
		total += st.Duration
	}
	if total > phase {
		r.bad(path+".stages", "the stages last %s, longer than the phase's %s", fmtDur(total), fmtDur(phase))
	}
	if l.Scenario == "" && l.Rate == 0 && l.VUs == 0 && len(l.Stages) == 0 {
		r.bad(path, "sends nothing: give rate, stages or vus (or a scenario with a profile)")
	}
}

// scenario resolves a `kind: Scenario` reference: the file must hold a
// Scenario document (the one named after #, when given). The load
// generator decodes and validates the scenario itself when the run
// starts.
func (r *resolver) scenario(path, ref string) ScenarioRef {
	file, name, _ := strings.Cut(ref, "#")
	out := ScenarioRef{File: r.ref(file), Name: name}
	if file == "" {
		r.bad(path, "%q names no file", ref)
		return out
	}
	docs, err := config.ReadFile(out.File)
	if err != nil {
		r.bad(path, "%v", err)
		return out
	}
	var names []string
	for _, d := range docs {
		if d.Kind != "Scenario" {
			continue
		}
		n := d.At("metadata.name").Value
		if name == "" || n == name {
			return out
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		r.bad(path, "%s holds no document of kind: Scenario", file)
	} else {
		r.bad(path, "%s has no scenario %q (it has %s)", file, name, strings.Join(names, ", "))
	}
	return out
}

func (r *resolver) faults() {
	p := r.plan
	names := map[string]string{} // fault name -> path of its first use
	shop := r.shopService()
	for i, ph := range r.e.Spec.Phases {
		if i >= len(p.Phases) {
			break
		}
		pp := p.Phases[i]
		var inPhase []PlannedFault
		var paths []string
		for j, f := range ph.Faults {
			path := fmt.Sprintf("spec.phases[%d].faults[%d]", i, j)
			r.checkName(path+".name", f.Name)
			if first, dup := names[f.Name]; dup {
				r.bad(path+".name", "fault %q is named twice (first at %s)", f.Name, first)
			}
			names[f.Name] = path
			pf := PlannedFault{Name: f.Name, Phase: ph.Name, Replica: -1, Toxic: f.Toxic, Gateway: f.Gateway, Process: f.Process, Provider: f.Provider}
			r.faultWindow(path, f, ph.Duration, pp.Start, &pf)
			kinds := 0
			for _, set := range []bool{f.Toxic != nil, f.Gateway != nil, f.Process != nil, f.Provider != nil} {
				if set {
					kinds++
				}
			}
			switch {
			case kinds != 1:
				r.bad(path, "give exactly one of toxic, gateway, process and provider, got %d", kinds)
				continue
			case f.Toxic != nil:
				pf.Kind, pf.Target = FaultToxic, "proxy/"+f.Toxic.Proxy
				r.toxic(path+".toxic", f)
			case f.Gateway != nil:
				pf.Kind, pf.Target = FaultGateway, "route/"+f.Gateway.Route
				r.gateway(path+".gateway", f.Gateway)
				if shop != nil && !slices.Contains(shopRoutes, f.Gateway.Route) {
					r.bad(path+".gateway.route", "the demo shop's gateway has no route %q (routes: %s)", f.Gateway.Route, strings.Join(shopRoutes, ", "))
				}
			case f.Process != nil:
				pf.Kind, pf.Target = FaultProcess, "service/"+f.Process.Service
				pf.Replica = r.process(path+".process", f, shop)
			case f.Provider != nil:
				pf.Kind, pf.Target = FaultProvider, "provider/"+f.Provider.Provider
				r.providerFault(path+".provider", &pf)
			}
			pf.Seed = DeriveSeed(p.Seed, "fault/"+f.Name)
			p.Decisions = append(p.Decisions, Decision{"fault " + f.Name + ": seed", strconv.FormatUint(pf.Seed, 10)})
			for k, other := range inPhase {
				if other.Target == pf.Target && pf.Start < other.End && other.Start < pf.End {
					r.bad(path, "overlaps fault %q on the same target %s from %s to %s (%s); give them disjoint times or make them one fault",
						other.Name, pf.Target, fmtDur(max(pf.Start, other.Start)-pp.Start), fmtDur(min(pf.End, other.End)-pp.Start), paths[k])
				}
			}
			inPhase = append(inPhase, pf)
			paths = append(paths, path)
			p.Faults = append(p.Faults, pf)
		}
	}
	slices.SortStableFunc(p.Faults, func(a, b PlannedFault) int {
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return strings.Compare(a.Name, b.Name)
	})
}

func (r *resolver) faultWindow(path string, f Fault, phase, phaseStart time.Duration, pf *PlannedFault) {
	if f.Start >= phase && phase > 0 {
		r.bad(path+".start", "%s is not within the phase's %s", fmtDur(f.Start), fmtDur(phase))
	}
	d := f.Duration
	if d == 0 {
		d = phase - f.Start
	} else if f.Start+d > phase {
		r.bad(path+".duration", "the fault would end at %s, after the phase's end at %s: faults stay within their phase", fmtDur(f.Start+d), fmtDur(phase))
		d = max(phase-f.Start, 0)
	}
	pf.Start, pf.End = phaseStart+f.Start, phaseStart+f.Start+d
}

// shopRoutes are the routes of the demo shop's gateway, which gateway
// faults name.
var shopRoutes = shop.Routes()

// shopService returns the demo shop service of the target, or nil.
func (r *resolver) shopService() *Service {
	for i := range r.plan.Target.Services {
		if r.plan.Target.Services[i].Shop != nil {
			return &r.plan.Target.Services[i]
		}
	}
	return nil
}

func (r *resolver) toxic(path string, f Fault) {
	t := f.Toxic
	var mode string
	known := false
	for _, px := range r.e.Spec.Proxies {
		if px.Name == t.Proxy {
			known, mode = true, px.Mode
		}
	}
	if t.Proxy == ShopProcessorProxy && r.shopService() != nil {
		known, mode = true, "http" // the run puts it in front of the shop's processor
	}
	if !known && r.e.Spec.FaultServer == "" {
		r.bad(path+".proxy", "no proxy %q in spec.proxies (and no spec.faultServer that may have it)", t.Proxy)
	}
	if !slices.Contains(fault.ToxicTypes(), t.Type) {
		r.bad(path+".type", "unknown toxic type %q (want one of %s)", t.Type, strings.Join(fault.ToxicTypes(), ", "))
		return
	}
	if !known {
		mode = "tcp"
		if t.Type == "http" {
			mode = "http"
		}
	} else if (t.Type == "http") != (mode == "http") {
		r.bad(path+".type", "%s toxics do not apply to proxy %s in %s mode", t.Type, t.Proxy, orDefault(mode, "tcp"))
		return
	}
	if t.Toxicity == 0 {
		t.Toxicity = 1
	}
	if err := checkToxic(f.Name, mode, t); err != nil {
		r.bad(path, "%v", err)
	}
}

// checkToxic has a fault server with no listeners and a fake clock
// validate the toxic, so that an experiment accepts exactly the toxics a
// server would.
func checkToxic(name, mode string, t *ToxicFault) error {
	srv, err := fault.NewServer(fault.Options{Clock: clock.NewFake(time.Unix(0, 0))})
	if err != nil {
		return err
	}
	defer srv.Close()
	off := false
	if _, err := srv.CreateProxy(fault.ProxyConfig{Name: "check", Upstream: "127.0.0.1:1", Enabled: &off, Mode: mode}); err != nil {
		return err
	}
	tox := float64(t.Toxicity)
	req := fault.ToxicRequest{Name: name, Type: t.Type, Stream: t.Stream, Attributes: t.Attributes, Toxicity: &tox}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encoding the toxic: %w", err)
	}
	if _, err := srv.AddToxic("check", bytes.NewReader(body)); err != nil {
		return fmt.Errorf("not a valid toxic: %w", err)
	}
	return nil
}

func (r *resolver) gateway(path string, g *GatewayFault) {
	before := len(r.errs)
	r.checkName(path+".route", g.Route)
	if g.Percentage == 0 {
		g.Percentage = 1
	}
	if len(r.errs) > before {
		return
	}
	// The gateway's own checks of a route fault, at the fault's fields.
	for _, p := range g.RouteFault("check", 0).Problems() {
		r.bad(path+p.Field, "%s", p.Message)
	}
}

// process checks a process fault and returns its replica: the one given,
// or one chosen from the seed.
func (r *resolver) process(path string, f Fault, shop *Service) int {
	pr := f.Process
	switch pr.Action {
	case ActionKill, ActionRestart, ActionPause:
	default:
		r.bad(path+".action", "%q is not a process fault action (kill, restart or pause)", pr.Action)
	}
	replicas := 0
	for _, sv := range r.plan.Target.Services {
		if sv.Name == pr.Service && sv.Shop == nil {
			replicas = sv.Replicas
		}
	}
	if replicas == 0 && shop != nil && slices.Contains(ShopServices, pr.Service) {
		replicas = shop.Shop.Replicas
	}
	if replicas == 0 {
		var names []string
		for _, sv := range r.plan.Target.Services {
			if sv.Shop == nil {
				names = append(names, sv.Name)
			}
		}
		if shop != nil {
			names = append(names, ShopServices...)
		}
		have := "the target starts no services"
		if len(names) > 0 {
			have = "services: " + strings.Join(names, ", ")
		}
		r.bad(path+".service", "no service %q to act on (%s)", pr.Service, have)
		return -1
	}
	if pr.Replica != nil {
		if *pr.Replica < 0 || *pr.Replica >= replicas {
			r.bad(path+".replica", "%d is not a replica of %s (0 to %d)", *pr.Replica, pr.Service, replicas-1)
			return -1
		}
		return *pr.Replica
	}
	replica := NewSource(r.plan.Seed, "fault/"+f.Name+"/replica").IntN(replicas)
	r.plan.Decisions = append(r.plan.Decisions, Decision{"fault " + f.Name + ": replica of " + pr.Service, strconv.Itoa(replica)})
	return replica
}

func (r *resolver) baseline() {
	p := r.plan
	name := r.e.Spec.Baseline
	if name == "" {
		for _, ph := range p.Phases {
			if !ph.HasFaults {
				p.Baseline = ph.Name
				return
			}
		}
		return
	}
	ph, ok := p.Phase(name)
	switch {
	case !ok:
		r.bad("spec.baseline", "unknown phase %q (phases: %s)", name, r.phaseNames())
	case ph.HasFaults:
		r.bad("spec.baseline", "phase %q has faults: the baseline is the steady state the fault phases are compared with", name)
	default:
		p.Baseline = name
	}
}

func (r *resolver) phaseNames() string {
	names := make([]string, len(r.plan.Phases))
	for i, ph := range r.plan.Phases {
		names[i] = ph.Name
	}
	return strings.Join(names, ", ")
}

func (r *resolver) aborts() {
	p := r.plan
	seen := map[string]bool{}
	for i, a := range r.e.Spec.Abort {
		path := fmt.Sprintf("spec.abort[%d]", i)
		pa := PlannedAbort{Name: a.Name, Window: a.Window, For: a.For, MinEvents: a.MinEvents, Phases: a.Phases}
		if pa.Window == 0 {
			pa.Window = DefaultAbortWindow
		}
		if pa.MinEvents == 0 {
			pa.MinEvents = DefaultAbortMinEvents
		}
		if pa.MinEvents < 0 {
			r.bad(path+".minEvents", "%d is negative", pa.MinEvents)
		}
		switch {
		case (a.BurnRate != nil) == (a.Threshold != ""):
			r.bad(path, "give exactly one of burnRate and threshold")
			continue
		case a.BurnRate != nil:
			pa.Kind, pa.SLO, pa.Above = AbortBurnRate, a.BurnRate.SLO, a.BurnRate.Above
			if s, ok := p.SLO(a.BurnRate.SLO); ok && s.Measure != "" {
				r.bad(path+".burnRate.slo", "SLO %s counts %s; burn-rate aborts judge SLOs that count requests", s.ID, s.Measure)
			}
			if _, ok := p.SLO(a.BurnRate.SLO); !ok && len(p.SLOs) > 0 {
				ids := make([]string, len(p.SLOs))
				for k, s := range p.SLOs {
					ids[k] = s.ID
				}
				r.bad(path+".burnRate.slo", "unknown SLO %q (the experiment's SLOs: %s)", a.BurnRate.SLO, strings.Join(ids, ", "))
			}
			if !(a.BurnRate.Above > 0) || math.IsInf(a.BurnRate.Above, 0) {
				r.bad(path+".burnRate.above", "%v is not a burn rate > 0", a.BurnRate.Above)
			}
			if pa.Name == "" {
				pa.Name = "burn-rate-" + a.BurnRate.SLO
			}
		default:
			th, err := parseThreshold(a.Threshold)
			if err != nil {
				r.bad(path+".threshold", "%v", err)
				continue
			}
			pa.Kind, pa.Threshold = AbortThreshold, &th
			if pa.Name == "" {
				pa.Name = th.String()
			}
		}
		if seen[pa.Name] {
			r.bad(path+".name", "abort condition %q is named twice", pa.Name)
		}
		seen[pa.Name] = true
		if p.Total > 0 && pa.Window > p.Total {
			r.bad(path+".window", "%s is longer than the run (%s): the condition could never be judged", fmtDur(pa.Window), fmtDur(p.Total))
		}
		if p.Total > 0 && pa.For >= p.Total {
			r.bad(path+".for", "%s is not shorter than the run (%s): the condition could never abort it", fmtDur(pa.For), fmtDur(p.Total))
		}
		for j, name := range a.Phases {
			if _, ok := p.Phase(name); !ok {
				r.bad(fmt.Sprintf("%s.phases[%d]", path, j), "unknown phase %q (phases: %s)", name, r.phaseNames())
			}
		}
		p.Aborts = append(p.Aborts, pa)
	}
}

// thresholds parses k6-style thresholds, in metric order.
func (r *resolver) thresholds(path string, m map[string][]string) []PlannedThreshold {
	var out []PlannedThreshold
	for _, metric := range slices.Sorted(maps.Keys(m)) {
		for i, expr := range m[metric] {
			th, err := parseThreshold(metric + ":" + expr)
			if err != nil {
				r.bad(fmt.Sprintf("%s.%s[%d]", path, metric, i), "%v", err)
				continue
			}
			out = append(out, th)
		}
	}
	return out
}

// thresholdMetrics are the metrics a threshold in an experiment may
// name: those the run's outcome recorder can measure.
var thresholdMetrics = []string{"http_req_duration", "http_req_service_duration", "http_req_failed", "http_reqs", "dropped_iterations", "data_received", "data_sent"}

// parseThreshold parses "metric:expr" and checks that the recorder can
// measure it.
func parseThreshold(s string) (PlannedThreshold, error) {
	t, err := load.ParseThresholdFlag(s)
	if err != nil {
		return PlannedThreshold{}, err
	}
	if !slices.Contains(thresholdMetrics, t.Metric) {
		return PlannedThreshold{}, fmt.Errorf("%s cannot be judged from the run's outcomes (want one of %s)", t.Metric, strings.Join(thresholdMetrics, ", "))
	}
	if len(t.Tags) > 0 {
		return PlannedThreshold{}, fmt.Errorf("%s: tags are not supported in experiments: the run records all requests together", s)
	}
	metric, expr, _ := strings.Cut(s, ":")
	return PlannedThreshold{Metric: strings.TrimSpace(metric), Expr: strings.TrimSpace(expr), Parsed: t}, nil
}
