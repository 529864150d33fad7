package load

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Model is how a test offers load.
type Model string

// The load models.
const (
	// Open is the arrival-rate model: requests are sent on a schedule,
	// whatever the service does, so latency is measured from the scheduled
	// time and a slow service cannot slow the test down.
	Open Model = "open"
	// Closed is the virtual-user model: each VU sends its next request when
	// the last one (and its think time) is done.
	Closed Model = "closed"
)

// The presets LoadSpec.Preset names.
const (
	PresetLoad       = "load"
	PresetStress     = "stress"
	PresetSpike      = "spike"
	PresetSoak       = "soak"
	PresetBreakpoint = "breakpoint"
)

// Defaults of a scenario's settings.
const (
	DefaultTimeout      = 30 * time.Second
	DefaultGracefulStop = 30 * time.Second
	DefaultLateAfter    = 10 * time.Millisecond
	DefaultMinOnTime    = 0.9
	// stressSteps is how many equal steps the stress preset climbs.
	stressSteps = 10
)

// Test is a scenario checked and compiled: every template, JSON path,
// threshold and profile is parsed, so nothing in it can fail for a reason
// that was knowable before the load starts. Run it with Run.
type Test struct {
	// Name is the scenario's name.
	Name   string
	Labels map[string]string
	Model  Model
	// Schedule is the open model's arrival schedule (nil in the closed
	// model); VUs the closed model's profile (nil in the open one).
	Schedule *Schedule
	VUs      *VUProfile
	// Steps are the requests of the mix, in the scenario's order.
	Steps        []*Step
	Setup        *Step
	Teardown     *Step
	MaxInFlight  int
	GracefulStop time.Duration
	// LateAfter and MinOnTime are the generator's own tolerance: more than
	// 1-MinOnTime of the open model's requests sent over LateAfter late
	// make the run inconclusive (see Health).
	LateAfter  time.Duration
	MinOnTime  float64
	Thresholds []Threshold
	Client     ClientOptions
	Seed       uint64
	Preset     string
	// TraceSample is the share of requests that carry a W3C traceparent
	// header, so that they join the service's traces (0: none).
	TraceSample float64
	// StepLength is the length of one step of the stress preset, whose
	// knee is searched step by step; 0 otherwise.
	StepLength time.Duration
	// StepTargets are the stress preset's step targets (rate or VUs).
	StepTargets []float64

	mix   *Mix
	scope *Scope
	vars  []string // initial variable values by slot
	data  *Data
	names []string   // distinct request names, in order
	grpc  *grpcSetup // the gRPC settings, when a request is a gRPC call (grpc.go)
	// journeys replace the mix when the scenario has them (journey.go);
	// groups are their group paths.
	journeys []*Journey
	groups   []string
	jmix     *journeyMix
	// maxCookies and maxCookieBytes bound each user's cookie jar.
	maxCookies, maxCookieBytes int
	// filters select the requests of the tag sets thresholds name.
	filters []*tagFilter
}

// Duration is the length of the test's profile.
func (t *Test) Duration() time.Duration {
	if t.Schedule != nil {
		return t.Schedule.Duration()
	}
	return t.VUs.Duration()
}

// Names returns the distinct request names of the mix, in scenario order.
func (t *Test) Names() []string { return slices.Clone(t.names) }

// Build checks the whole scenario and compiles it into a Test. Every
// problem is reported, at file:line:col when the scenario came from a
// file: malformed URLs, bad templates and JSON paths, rates and VUs that
// send nothing, thresholds on unknown metrics or request names.
func (s *Scenario) Build() (*Test, error) {
	b := &builder{s: s, t: &Test{Name: s.Metadata.Name, Labels: s.Metadata.Labels}}
	b.build()
	if len(b.errs) > 0 {
		return nil, joinErrors(b.errs)
	}
	return b.t, nil
}

// joinErrors joins errors one per line, as config errors are.
func joinErrors(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &multiError{errs: errs, msg: strings.Join(msgs, "\n")}
}

type multiError struct {
	errs []error
	msg  string
}

func (e *multiError) Error() string   { return e.msg }
func (e *multiError) Unwrap() []error { return e.errs }

type builder struct {
	s    *Scenario
	t    *Test
	errs []error
}

func (b *builder) bad(path, format string, args ...any) {
	b.errs = append(b.errs, b.s.errorf(path, format, args...))
}

func (b *builder) build() {
	sp := &b.s.Spec
	t := b.t
	t.Seed = sp.Seed
	if t.Seed == 0 {
		t.Seed = 0x5eed
	}
	if t.Name == "" {
		t.Name = "scenario"
	}
	b.client()
	b.scope()
	if sp.BaseURL != "" {
		if _, err := checkURL(sp.BaseURL); err != nil {
			b.bad("spec.baseURL", "%v", err)
		}
	}
	if sp.Setup != nil {
		t.Setup = b.step("spec.setup", sp.Setup)
	}
	if sp.Teardown != nil {
		t.Teardown = b.step("spec.teardown", sp.Teardown)
	}
	if len(sp.Journeys) > 0 {
		b.journeys()
	} else if len(sp.Requests) == 0 {
		b.bad("spec.requests", "needs at least one request (or give journeys)")
	} else if sp.CookieJar != (CookieJarSpec{}) {
		b.bad("spec.cookieJar", "bounds the cookies of journey users; this scenario has requests, which keep no cookies")
	}
	for i := range sp.Requests {
		if st := b.step(fmt.Sprintf("spec.requests[%d]", i), &sp.Requests[i]); st != nil {
			st.idx = len(t.Steps)
			t.Steps = append(t.Steps, st)
			if !slices.Contains(t.names, st.Name) {
				t.names = append(t.names, st.Name)
			}
		}
	}
	if len(sp.Journeys) > 0 {
		t.jmix = newJourneyMix(t.journeys)
	} else if len(t.Steps) == len(sp.Requests) && len(t.Steps) > 0 {
		m, err := NewMix(t.Steps)
		if err != nil {
			b.bad("spec.requests", "%v", err)
		}
		t.mix = m
	}
	b.profile()
	b.thresholds()
}

func (b *builder) client() {
	sp := &b.s.Spec
	o := &b.t.Client
	o.Timeout = sp.Timeout
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	switch HTTPVersion(sp.HTTP) {
	case "", HTTP1:
		o.Version = HTTP1
	case HTTP2, H2C:
		o.Version = HTTPVersion(sp.HTTP)
	default:
		b.bad("spec.http", "%q: want \"1.1\", \"2\" or \"h2c\"", sp.HTTP)
	}
	o.Insecure = sp.TLS.Insecure
	o.CAFile = b.s.relPath(sp.TLS.CAFile)
	if _, err := o.tlsConfig(); err != nil {
		b.bad("spec.tls.caFile", "%v", err)
	}
}

// scope collects the variables templates may use: the scenario's vars,
// the variables any request extracts, and the data file's columns.
func (b *builder) scope() {
	sp := &b.s.Spec
	var columns []string
	if sp.Data != nil {
		d, err := LoadData(b.s.relPath(sp.Data.File), DataOrder(sp.Data.Order))
		if err != nil {
			b.bad("spec.data", "%v", err)
		} else {
			b.t.data = d
			columns = d.Columns
		}
	}
	scope, _ := NewScope(nil, columns)
	var values []string
	for _, name := range sortedKeys(toIndex(sp.Vars)) {
		if err := scope.AddVar(name); err != nil {
			b.bad("spec.vars."+name, "%v", err)
			continue
		}
		values = append(values, sp.Vars[name])
	}
	reqs := []*RequestSpec{sp.Setup, sp.Teardown}
	paths := []string{"spec.setup", "spec.teardown"}
	for i := range sp.Requests {
		reqs = append(reqs, &sp.Requests[i])
		paths = append(paths, fmt.Sprintf("spec.requests[%d]", i))
	}
	jr, jp := journeyRequests(sp)
	reqs, paths = append(reqs, jr...), append(paths, jp...)
	for i, r := range reqs {
		if r == nil {
			continue
		}
		for _, name := range sortedKeys(toIndex(r.Extract)) {
			if _, ok := scope.Slot(name); ok {
				continue
			}
			if err := scope.AddVar(name); err != nil {
				b.bad(paths[i]+".extract."+name, "%v", err)
				continue
			}
			values = append(values, "")
		}
	}
	b.t.scope, b.t.vars = scope, values
}

func toIndex(m map[string]string) map[string]int {
	out := make(map[string]int, len(m))
	for k := range m {
		out[k] = 0
	}
	return out
}

// step compiles one request; it returns nil after reporting problems.
func (b *builder) step(path string, r *RequestSpec) *Step {
	sp := &b.s.Spec
	n := len(b.errs)
	st := &Step{Name: r.Name, Method: strings.ToUpper(r.Method)}
	if st.Method == "" {
		st.Method = "GET"
	}
	if !isToken(st.Method) {
		b.bad(path+".method", "%q is not an HTTP method", r.Method)
	}
	if st.Name == "" {
		st.Name = st.Method + " " + r.Path
	}
	st.URL = b.template(path+".path", r.Path)
	if !strings.HasPrefix(r.Path, "http://") && !strings.HasPrefix(r.Path, "https://") && !isGRPC(r.Path) {
		switch {
		case sp.BaseURL == "":
			b.bad(path+".path", "%q is not a URL and the scenario has no baseURL", r.Path)
		case !strings.HasPrefix(r.Path, "/"):
			b.bad(path+".path", "%q: a path starts with / (or is a whole http:// URL)", r.Path)
		case st.URL != nil:
			st.URL = st.URL.withPrefix(strings.TrimSuffix(sp.BaseURL, "/"))
		}
	}
	if st.URL != nil && len(b.errs) == n {
		if _, err := checkURL(st.URL.Render(b.sampleEnv())); err != nil {
			b.bad(path+".path", "%v", err)
		}
	}
	headers := map[string]string{}
	keys := map[string]string{} // lower-case name -> name as written
	for _, src := range []map[string]string{sp.Headers, r.Headers} {
		for k, v := range src {
			if old, ok := keys[strings.ToLower(k)]; ok {
				delete(headers, old)
			}
			keys[strings.ToLower(k)] = k
			headers[k] = v
		}
	}
	for _, k := range sortedKeys(toIndex(headers)) {
		hp := path + ".headers." + k
		if _, own := r.Headers[k]; !own {
			hp = "spec.headers." + k
		}
		if !isToken(k) {
			b.bad(hp, "%q is not a header name", k)
			continue
		}
		if v := b.template(hp, headers[k]); v != nil {
			st.Headers = append(st.Headers, HeaderTemplate{Key: k, Value: v})
		}
	}
	if r.Body != "" {
		st.Body = b.template(path+".body", r.Body)
	}
	st.ThinkMin, st.ThinkMax = r.Think, max(r.ThinkMax, r.Think)
	if r.ThinkMax != 0 && r.ThinkMax < r.Think {
		b.bad(path+".thinkMax", "%s is below think %s", r.ThinkMax, r.Think)
	}
	st.Weight = 1
	if r.Weight != nil {
		st.Weight = *r.Weight
		if st.Weight < 0 {
			b.bad(path+".weight", "%v is negative", st.Weight)
		}
	}
	for i, code := range r.ExpectedStatuses {
		if code < 100 || code > 599 {
			b.bad(fmt.Sprintf("%s.expectedStatuses[%d]", path, i), "%d is not an HTTP status (100 to 599)", code)
		}
	}
	st.Expected = r.ExpectedStatuses
	for i, c := range r.Checks {
		if chk, ok := b.check(fmt.Sprintf("%s.checks[%d]", path, i), c); ok {
			st.Checks = append(st.Checks, chk)
		}
	}
	if len(st.Checks) > 64 {
		b.bad(path+".checks", "%d checks: at most 64 per request", len(st.Checks))
	}
	for _, v := range sortedKeys(toIndex(r.Extract)) {
		p, err := ParseJSONPath(r.Extract[v])
		if err != nil {
			b.bad(path+".extract."+v, "%v", err)
			continue
		}
		slot, ok := b.t.scope.Slot(v)
		if !ok {
			continue // reported by scope
		}
		st.Extract = append(st.Extract, Extraction{Var: v, Slot: slot, Path: p})
	}
	if st.URL != nil && isGRPC(st.URL.String()) {
		b.grpcStep(path, r, st)
	} else if len(r.Messages) > 0 || len(r.ExpectedCodes) > 0 {
		b.bad(path, "messages and expectedCodes are for gRPC calls (a grpc:// URL)")
	}
	if len(b.errs) > n {
		return nil
	}
	if err := st.Prepare(); err != nil {
		b.bad(path, "%v", err)
		return nil
	}
	return st
}

func (b *builder) check(path string, c CheckSpec) (Check, bool) {
	out := Check{Name: c.Name, Status: c.Status, MaxLatency: c.MaxLatency, Equals: c.Equals}
	ok := true
	for i, s := range c.Status {
		if s < 100 || s > 599 {
			b.bad(fmt.Sprintf("%s.status[%d]", path, i), "%d is not an HTTP status (100-599)", s)
			ok = false
		}
	}
	if c.JSONPath != "" {
		p, err := ParseJSONPath(c.JSONPath)
		if err != nil {
			b.bad(path+".jsonPath", "%v", err)
			ok = false
		}
		out.JSONPath = p
	} else if c.Equals != nil {
		b.bad(path+".equals", "needs a jsonPath to compare")
		ok = false
	}
	if c.Contains != nil {
		out.Contains = []byte(*c.Contains)
	}
	if len(c.Status) == 0 && c.MaxLatency == 0 && c.JSONPath == "" && c.Contains == nil {
		b.bad(path, "a check needs status, maxLatency, jsonPath or contains")
		ok = false
	}
	return out, ok
}

func (b *builder) template(path, src string) *Template {
	t, err := ParseTemplate(src, b.t.scope)
	if err != nil {
		b.bad(path, "%v", err)
		return nil
	}
	return t
}

// sampleEnv renders templates for checking: variables and columns are
// "x", so a URL template that is malformed for any value shows it.
func (b *builder) sampleEnv() *Env {
	env := &Env{Rand: rand.New(rand.NewPCG(1, 2))}
	env.Vars = make([]string, b.t.scope.Len())
	for i := range env.Vars {
		env.Vars[i] = "x"
	}
	if b.t.data != nil {
		env.Row = b.t.data.rows[0]
	}
	return env
}

// checkURL parses an absolute http(s) URL.
func checkURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("malformed URL %q: %v", s, strings.TrimPrefix(err.Error(), "parse "+fmt.Sprintf("%q", s)+": "))
	}
	if u.Scheme != "http" && u.Scheme != "https" && !isGRPC(s) {
		return nil, fmt.Errorf("URL %q: want an http://, https://, grpc:// or grpcs:// URL", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q has no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return nil, fmt.Errorf("URL %q: port %q is not a port number", s, p)
		}
	}
	return u, nil
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a number")
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return 0, fmt.Errorf("out of range")
		}
	}
	return n, nil
}

// isToken reports whether s is an HTTP token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// profile builds the schedule or VU profile from the load spec.
func (b *builder) profile() {
	l := &b.s.Spec.Load
	t := b.t
	switch {
	case l.Rate != nil && l.VUs != nil:
		b.bad("spec.load.vus", "give rate (open model) or vus (closed model), not both")
		return
	case l.Rate != nil:
		t.Model = Open
		if r := *l.Rate; math.IsNaN(r) || r < 0 || (r == 0 && len(l.Stages) == 0) {
			b.bad("spec.load.rate", "%v: a rate must be > 0 requests per second", r)
			return
		}
	case l.VUs != nil:
		t.Model = Closed
		if v := *l.VUs; v < 0 || (v == 0 && len(l.Stages) == 0) {
			b.bad("spec.load.vus", "%d: want at least 1 VU", v)
			return
		}
	default:
		b.bad("spec.load", "give rate (open model, requests per second) or vus (closed model)")
		return
	}
	start := 0.0
	if l.Rate != nil {
		start = *l.Rate
	} else {
		start = float64(*l.VUs)
	}
	stages := l.Stages
	if l.Preset != "" {
		if len(stages) > 0 {
			b.bad("spec.load.stages", "a preset makes the stages; give one or the other")
			return
		}
		if l.Duration <= 0 {
			b.bad("spec.load.duration", "the %s preset needs a duration", l.Preset)
			return
		}
		var err error
		start, stages, err = presetStages(l.Preset, start, l.Duration, t.Model)
		if err != nil {
			b.bad("spec.load.preset", "%v", err)
			return
		}
		t.Preset = l.Preset
		if l.Preset == PresetStress {
			t.StepLength = l.Duration / stressSteps
			for i := 1; i <= stressSteps; i++ {
				t.StepTargets = append(t.StepTargets, stages[2*i-1].Target)
			}
		}
	} else if len(stages) == 0 {
		if l.Duration <= 0 {
			b.bad("spec.load.duration", "a constant load needs a duration (or give stages)")
			return
		}
		stages = []Stage{{Duration: l.Duration, Target: start}}
	} else if l.Duration != 0 {
		b.bad("spec.load.duration", "stages set the duration; give one or the other")
		return
	}
	if t.Model == Open {
		rs := make([]RateStage, len(stages))
		for i, st := range stages {
			rs[i] = RateStage{Duration: st.Duration, Target: st.Target}
		}
		s, err := NewSchedule(start, rs)
		if err != nil {
			b.bad("spec.load", "%v", err)
			return
		}
		t.Schedule = s
		t.MaxInFlight = l.MaxInFlight
		if t.MaxInFlight == 0 {
			peak := start
			for _, st := range stages {
				peak = max(peak, st.Target)
			}
			t.MaxInFlight = max(100, int(math.Min(math.Ceil(peak), 10_000)))
		}
		if t.MaxInFlight < 0 {
			b.bad("spec.load.maxInFlight", "%d is negative", l.MaxInFlight)
		}
		t.Client.MaxConns = t.MaxInFlight
	} else {
		vs := make([]VUStage, len(stages))
		for i, st := range stages {
			if st.Target != math.Trunc(st.Target) {
				b.bad(fmt.Sprintf("spec.load.stages[%d].target", i), "%v: VUs are whole numbers", st.Target)
				return
			}
			vs[i] = VUStage{Duration: st.Duration, Target: int(st.Target)}
		}
		p, err := NewVUProfile(int(start), vs)
		if err != nil {
			b.bad("spec.load", "%v", err)
			return
		}
		t.VUs = p
		if l.MaxInFlight != 0 {
			b.bad("spec.load.maxInFlight", "caps the open model; with vus the VUs are the cap")
		}
		t.Client.MaxConns = p.Max()
	}
	t.GracefulStop = l.GracefulStop
	if t.GracefulStop == 0 {
		t.GracefulStop = DefaultGracefulStop
	}
	t.LateAfter = l.LateAfter
	if t.LateAfter == 0 {
		t.LateAfter = DefaultLateAfter
	}
	t.MinOnTime = DefaultMinOnTime
	if m := l.MinOnTime; m.Set {
		t.MinOnTime = float64(m.Ratio)
	}
}

// presetStages shapes a preset: peak is the rate or VUs at the top, d the
// whole length. It returns the start value and the stages.
func presetStages(preset string, peak float64, d time.Duration, model Model) (float64, []Stage, error) {
	if peak <= 0 {
		return 0, nil, fmt.Errorf("the %s preset needs a peak rate or VUs above 0", preset)
	}
	frac := func(f float64) time.Duration { return time.Duration(float64(d) * f) }
	round := func(v float64) float64 {
		if model == Closed {
			return math.Max(1, math.Round(v))
		}
		return v
	}
	const jump = time.Millisecond // a step is a ramp too short to matter
	switch preset {
	case PresetLoad:
		return 0, []Stage{{frac(0.1), peak}, {d - 2*frac(0.1), peak}, {frac(0.1), 0}}, nil
	case PresetSoak:
		return 0, []Stage{{frac(0.05), peak}, {d - 2*frac(0.05), peak}, {frac(0.05), 0}}, nil
	case PresetSpike:
		base := round(peak / 10)
		return base, []Stage{{frac(0.4), base}, {frac(0.05), peak}, {frac(0.2), peak}, {frac(0.05), base}, {d - frac(0.4) - frac(0.05)*2 - frac(0.2), base}}, nil
	case PresetBreakpoint:
		return 0, []Stage{{d, peak}}, nil
	case PresetStress:
		step := d / stressSteps
		if step <= jump {
			return 0, nil, fmt.Errorf("duration %s is too short for %d steps", d, stressSteps)
		}
		var stages []Stage
		for i := 1; i <= stressSteps; i++ {
			v := round(peak * float64(i) / stressSteps)
			stages = append(stages, Stage{jump, v}, Stage{step - jump, v})
		}
		return 0, stages, nil
	}
	return 0, nil, fmt.Errorf("unknown preset %q (want %s, %s, %s, %s or %s)", preset,
		PresetLoad, PresetStress, PresetSpike, PresetSoak, PresetBreakpoint)
}

// thresholds parses the scenario's thresholds. The open model's
// punctuality is the generator's own concern (Health), not a threshold
// on the service.
func (b *builder) thresholds() {
	sp := &b.s.Spec
	t := b.t
	for _, ref := range sortedKeys(toIndex(mapKeys(sp.Thresholds))) {
		for i, ts := range sp.Thresholds[ref] {
			path := fmt.Sprintf("spec.thresholds.%s[%d]", ref, i)
			th, err := ParseThreshold(ref, ts.Threshold)
			if err != nil {
				b.bad(path, "%v", err)
				continue
			}
			f, err := t.checkTags(th)
			if err != nil {
				b.bad(path, "%v", err)
				continue
			}
			if f != nil {
				if err := t.addTagFilter(f); err != nil {
					b.bad(path, "%v", err)
					continue
				}
			}
			th.AbortOnFail, th.DelayAbortEval, th.Window = ts.AbortOnFail, ts.DelayAbortEval, ts.Window
			if t.Preset == PresetBreakpoint {
				th.AbortOnFail = true
			}
			if th.Window != 0 {
				switch {
				case th.Window < time.Second || th.Window%time.Second != 0:
					b.bad(path, "window %s: want whole seconds", th.Window)
					continue
				case t.Schedule != nil || t.VUs != nil:
					if th.Window > t.Duration() {
						b.bad(path, "window %s is longer than the test (%s)", th.Window, t.Duration())
						continue
					}
				}
			}
			if (th.Metric == "schedule_lag" || th.Metric == "arrivals_on_time" || th.Metric == "dropped_iterations") && t.Model == Closed {
				b.bad(path, "%s is a metric of the open model (rate:), not of VUs", th.Metric)
				continue
			}
			t.Thresholds = append(t.Thresholds, th)
		}
	}
	if (t.Preset == PresetStress || t.Preset == PresetBreakpoint) && len(t.Thresholds) == 0 {
		b.bad("spec.thresholds", "the %s preset needs thresholds to tell when the service broke", t.Preset)
	}
}

func mapKeys[V any](m map[string]V) map[string]string {
	out := make(map[string]string, len(m))
	for k := range m {
		out[k] = k
	}
	return out
}

func formatFloat(f float64) string { return fmt.Sprintf("%g", f) }
