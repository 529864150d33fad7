package load

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// JourneySpec is one journey of a scenario: what one user does, step by
// step, with its own cookies and variables. In the open model (rate:)
// each arrival is a new user walking the journey once; in the closed
// model (vus:) each VU walks journeys (picked by weight) again and again,
// keeping its cookies and its setup's variables between them.
type JourneySpec struct {
	// Name labels the journey in reports and in thresholds
	// ("journey_duration{journey:checkout}").
	Name string `yaml:"name" config:"required"`
	// Weight is the journey's share of the users relative to the other
	// journeys' weights; default 1.
	Weight *float64 `yaml:"weight"`
	// Setup are steps each user runs once before its first journey: a
	// login with the user's own row of the data file, whose cookies and
	// extracted variables the journey's steps then use. Their requests
	// count as the journey's.
	Setup []JourneyStepSpec `yaml:"setup"`
	// Steps are the journey's steps, in order.
	Steps []JourneyStepSpec `yaml:"steps" config:"required"`
	// Redirects says whether 3xx answers with a Location are followed:
	// by default up to 10 in a row. A step may say otherwise.
	Redirects *RedirectSpec `yaml:"redirects"`
	// Cookies keeps a cookie jar per user: cookies a response sets are
	// sent with the user's later requests to the same host; default true.
	Cookies *bool `yaml:"cookies"`
}

// RedirectSpec says how redirects are followed.
type RedirectSpec struct {
	// Follow turns following on or off; default true.
	Follow *bool `yaml:"follow"`
	// Max is the most redirects followed in a row; default 10. A request
	// redirected more often fails as a status failure.
	Max int `yaml:"max"`
}

// JourneyStepSpec is one step of a journey: a request, a think time, a
// group or a loop of steps. If makes any of them conditional on the
// previous response.
type JourneyStepSpec struct {
	// Request is a request, as in requests: (name, method, path, headers,
	// body, checks, extract, expectedStatuses; weight does not apply).
	Request *RequestSpec `yaml:"request"`
	// Think is a pause: fixed, or uniform between Think and ThinkMax when
	// ThinkMax is set. Beside a request, a group or a loop, the pause
	// follows it.
	Think time.Duration `yaml:"think"`
	// ThinkMax is the upper bound of a random think time.
	ThinkMax time.Duration `yaml:"thinkMax"`
	// Group names a group of Steps whose duration, from its first
	// request to the end of its last step, is a metric of its own:
	// group_duration{group:::cart} (k6's group names, "::" before each
	// level); its requests carry the group tag.
	Group string `yaml:"group"`
	// Loop repeats Steps this many times.
	Loop int `yaml:"loop"`
	// Steps are the steps of a group or a loop.
	Steps []JourneyStepSpec `yaml:"steps"`
	// If runs the step only when the condition holds on the previous
	// response of the journey (or on the variables it extracted).
	If *ConditionSpec `yaml:"if"`
	// Redirects overrides the journey's redirect setting for this
	// request.
	Redirects *RedirectSpec `yaml:"redirects"`
}

// ConditionSpec is a condition on the previous response; every field
// that is set must hold.
type ConditionSpec struct {
	// Status is the set of statuses the previous response may have.
	Status []int `yaml:"status"`
	// Var names a variable (one an extract sets) to compare.
	Var string `yaml:"var"`
	// Equals, with Var, is the value it must have.
	Equals *string `yaml:"equals"`
	// NotEquals, with Var, is a value it must not have ("" for: was
	// extracted).
	NotEquals *string `yaml:"notEquals"`
}

// DefaultMaxRedirects is how many redirects in a row a journey follows
// by default.
const DefaultMaxRedirects = 10

// Journey is a compiled journey.
type Journey struct {
	Name   string
	Weight float64
	// Setup runs once per user; Steps every time the journey is walked.
	Setup, Steps []*JourneyStep
	// Cookies keeps a jar per user.
	Cookies bool
	idx     int
}

// JourneyStep is a compiled step: a request (Request), a pause (think
// bounds), a group or a loop (Steps), each perhaps conditional.
type JourneyStep struct {
	Request            *Step
	ThinkMin, ThinkMax time.Duration
	// Group is the group's path ("::cart") for a group step.
	Group string
	// Loop repeats Steps; 0 for a group (once).
	Loop  int
	Steps []*JourneyStep
	If    *Condition
	// MaxRedirects is how many redirects in a row the request follows (0:
	// none).
	MaxRedirects int
}

// Condition is a compiled ConditionSpec.
type Condition struct {
	Status            []int
	Slot              int // -1: no variable
	Equals, NotEquals *string
}

// holds reports whether the condition holds for the previous status and
// the variables.
func (c *Condition) holds(status int, vars []string) bool {
	if len(c.Status) > 0 && !slices.Contains(c.Status, status) {
		return false
	}
	if c.Slot >= 0 {
		v := vars[c.Slot]
		if c.Equals != nil && v != *c.Equals {
			return false
		}
		if c.NotEquals != nil && v == *c.NotEquals {
			return false
		}
	}
	return true
}

// Journeys returns the test's journeys; nil for a mix of requests.
func (t *Test) Journeys() []*Journey { return slices.Clone(t.journeys) }

// Groups returns the group paths of the test's journeys, in order.
func (t *Test) Groups() []string { return slices.Clone(t.groups) }

// journeyRequests lists every request of the scenario's journeys with its
// field path, for the scope's extracted variables.
func journeyRequests(sp *ScenarioSpec) ([]*RequestSpec, []string) {
	var reqs []*RequestSpec
	var paths []string
	var walk func(path string, steps []JourneyStepSpec)
	walk = func(path string, steps []JourneyStepSpec) {
		for i := range steps {
			p := fmt.Sprintf("%s[%d]", path, i)
			if steps[i].Request != nil {
				reqs = append(reqs, steps[i].Request)
				paths = append(paths, p+".request")
			}
			walk(p+".steps", steps[i].Steps)
		}
	}
	for i := range sp.Journeys {
		walk(fmt.Sprintf("spec.journeys[%d].setup", i), sp.Journeys[i].Setup)
		walk(fmt.Sprintf("spec.journeys[%d].steps", i), sp.Journeys[i].Steps)
	}
	return reqs, paths
}

// journeys compiles the scenario's journeys; their requests become the
// test's steps, tagged with their journey and group.
func (b *builder) journeys() {
	sp := &b.s.Spec
	t := b.t
	if len(sp.Requests) > 0 {
		b.bad("spec.requests", "give requests (a mix) or journeys, not both")
		return
	}
	t.Client.OwnRedirects = true
	t.maxCookies, t.maxCookieBytes = DefaultMaxCookies, DefaultMaxCookieBytes
	if jar := sp.CookieJar; jar.MaxCookies != 0 || jar.MaxSize != 0 {
		if jar.MaxCookies < 0 {
			b.bad("spec.cookieJar.maxCookies", "%d is negative", jar.MaxCookies)
		} else if jar.MaxCookies > 0 {
			t.maxCookies = jar.MaxCookies
		}
		if jar.MaxSize < 0 || jar.MaxSize > math.MaxInt32 {
			b.bad("spec.cookieJar.maxSize", "%d bytes: want 0 (the default) to 2GiB", jar.MaxSize)
		} else if jar.MaxSize > 0 {
			t.maxCookieBytes = int(jar.MaxSize)
		}
	}
	var cum float64
	for i := range sp.Journeys {
		js := &sp.Journeys[i]
		path := fmt.Sprintf("spec.journeys[%d]", i)
		j := &Journey{Name: js.Name, Weight: 1, Cookies: js.Cookies == nil || *js.Cookies, idx: i}
		if !isIdentLike(js.Name) {
			b.bad(path+".name", "%q: a journey's name is letters, digits, -, _ and .", js.Name)
		}
		if slices.ContainsFunc(t.journeys, func(o *Journey) bool { return o.Name == js.Name }) {
			b.bad(path+".name", "journey %q is defined twice", js.Name)
		}
		if js.Weight != nil {
			j.Weight = *js.Weight
			if j.Weight < 0 {
				b.bad(path+".weight", "%v is negative", j.Weight)
			}
		}
		redirects := b.redirects(path+".redirects", js.Redirects, DefaultMaxRedirects)
		if len(js.Steps) == 0 {
			b.bad(path+".steps", "a journey needs at least one step")
		}
		j.Setup = b.journeySteps(path+".setup", j, "", js.Setup, redirects)
		j.Steps = b.journeySteps(path+".steps", j, "", js.Steps, redirects)
		cum += j.Weight
		t.journeys = append(t.journeys, j)
	}
	if cum <= 0 && len(t.journeys) > 0 {
		b.bad("spec.journeys", "no journey has a positive weight")
	}
}

// redirects compiles a redirect setting into how many redirects in a row
// are followed; inherit is the setting around it.
func (b *builder) redirects(path string, r *RedirectSpec, inherit int) int {
	if r == nil {
		return inherit
	}
	if r.Max < 0 {
		b.bad(path+".max", "%d is negative", r.Max)
		return 0
	}
	if r.Follow != nil && !*r.Follow {
		if r.Max > 0 {
			b.bad(path+".max", "a limit on redirects that are not followed")
		}
		return 0
	}
	if r.Max == 0 {
		return DefaultMaxRedirects
	}
	return r.Max
}

// journeySteps compiles the steps of a journey, a group or a loop.
func (b *builder) journeySteps(path string, j *Journey, group string, specs []JourneyStepSpec, redirects int) []*JourneyStep {
	var out []*JourneyStep
	for i := range specs {
		sp := &specs[i]
		p := fmt.Sprintf("%s[%d]", path, i)
		js := &JourneyStep{ThinkMin: sp.Think, ThinkMax: max(sp.ThinkMax, sp.Think)}
		if sp.ThinkMax != 0 && sp.ThinkMax < sp.Think {
			b.bad(p+".thinkMax", "%s is below think %s", sp.ThinkMax, sp.Think)
		}
		if sp.Think < 0 {
			b.bad(p+".think", "%s is negative", sp.Think)
		}
		kinds := 0
		for _, set := range []bool{sp.Request != nil, sp.Group != "", sp.Loop != 0} {
			if set {
				kinds++
			}
		}
		if kinds > 1 {
			b.bad(p, "a step is one of request, group or loop")
			continue
		}
		if kinds == 0 && sp.Think == 0 {
			b.bad(p, "a step needs a request, a group, a loop or a think time")
			continue
		}
		if sp.If != nil {
			js.If = b.condition(p+".if", sp.If)
		}
		switch {
		case sp.Request != nil:
			if len(sp.Steps) > 0 {
				b.bad(p+".steps", "a request step has no steps; use a group or a loop")
			}
			if sp.Request.Weight != nil {
				b.bad(p+".request.weight", "a journey's requests run in order; weights are for journeys")
			}
			js.MaxRedirects = b.redirects(p+".redirects", sp.Redirects, redirects)
			if sp.Request.Think != 0 || sp.Request.ThinkMax != 0 {
				b.bad(p+".request.think", "in a journey, think is a step's (beside request:)")
			}
			st := b.step(p+".request", sp.Request)
			if st == nil {
				continue
			}
			st.journey, st.group = j.Name, group
			st.idx = len(b.t.Steps)
			b.t.Steps = append(b.t.Steps, st)
			if !slices.Contains(b.t.names, st.Name) {
				b.t.names = append(b.t.names, st.Name)
			}
			js.Request = st
		case sp.Group != "":
			if strings.Contains(sp.Group, "::") || strings.ContainsAny(sp.Group, "{},") {
				b.bad(p+".group", "%q: a group's name may not hold ::, {, } or ,", sp.Group)
				continue
			}
			js.Group = group + "::" + sp.Group
			if !slices.Contains(b.t.groups, js.Group) {
				b.t.groups = append(b.t.groups, js.Group)
			}
			js.Steps = b.journeySteps(p+".steps", j, js.Group, sp.Steps, b.redirects(p+".redirects", sp.Redirects, redirects))
		case sp.Loop != 0:
			if sp.Loop < 0 {
				b.bad(p+".loop", "%d is negative", sp.Loop)
				continue
			}
			js.Loop = sp.Loop
			js.Steps = b.journeySteps(p+".steps", j, group, sp.Steps, b.redirects(p+".redirects", sp.Redirects, redirects))
		}
		if (js.Group != "" || js.Loop != 0) && len(sp.Steps) == 0 {
			b.bad(p+".steps", "a group or a loop needs steps")
		}
		out = append(out, js)
	}
	return out
}

// condition compiles an if:.
func (b *builder) condition(path string, c *ConditionSpec) *Condition {
	out := &Condition{Status: c.Status, Slot: -1, Equals: c.Equals, NotEquals: c.NotEquals}
	for i, s := range c.Status {
		if s < 100 || s > 599 {
			b.bad(fmt.Sprintf("%s.status[%d]", path, i), "%d is not an HTTP status (100-599)", s)
		}
	}
	switch {
	case c.Var != "":
		slot, ok := b.t.scope.Slot(c.Var)
		if !ok {
			b.bad(path+".var", "no variable %q (vars: and extract: make them)", c.Var)
		}
		out.Slot = slot
		if c.Equals == nil && c.NotEquals == nil {
			b.bad(path+".var", "compare it with equals or notEquals")
		}
	case c.Equals != nil || c.NotEquals != nil:
		b.bad(path, "equals and notEquals compare a var")
	case len(c.Status) == 0:
		b.bad(path, "a condition needs status or var")
	}
	return out
}

// isIdentLike reports whether s is a name that reads well in a tag:
// letters, digits, '-', '_' and '.'.
func isIdentLike(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
