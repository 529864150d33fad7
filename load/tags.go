package load

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/relia-dev/relia/outcome"
)

// ThresholdTags are the tags a threshold may split a metric by, as k6
// names them: the request's name and method, the response's status, and
// whether the response was expected (k6's expected_response: an answer
// with an expected status); scenario names the scenario itself, as every
// sample of a k6 run is tagged.
var ThresholdTags = []string{"name", "method", "status", "expected_response", "scenario", "journey", "group"}

// MaxTagSets bounds the distinct tag sets (other than a request name
// alone, which every run keeps) that one test's thresholds may name: each
// set has recorders of its own that every request it selects is recorded
// into.
const MaxTagSets = 32

// wholeRunMetrics are measured for the run as a whole: no request tag
// splits them.
var wholeRunMetrics = []string{"schedule_lag", "arrivals_on_time", "dropped_iterations", "vus", "vus_max", "iterations", "iteration_duration"}

// TagSet holds the requests that one set of threshold tags selects
// (http_req_duration{method:GET,status:200}), recorded as the run goes,
// so that a threshold on them is judged on their own histograms and
// merges exactly across segments.
type TagSet struct {
	// Requests and Checks are as Result's, for the selected requests.
	Requests *outcome.Recorder `json:"requests"`
	Checks   *outcome.Recorder `json:"checks"`
	// Phases are the selected requests' phases; nil unless a threshold on
	// the set reads a phase (http_req_waiting{...}).
	Phases *PhaseRecorders `json:"phases,omitempty"`
}

func newTagSet(phases bool) *TagSet {
	s := &TagSet{Requests: newRecorder(), Checks: newRecorder()}
	if phases {
		s.Phases = newPhaseRecorders()
	}
	return s
}

func (s *TagSet) merge(o *TagSet) error {
	if err := s.Requests.Merge(o.Requests); err != nil {
		return err
	}
	if err := s.Checks.Merge(o.Checks); err != nil {
		return err
	}
	if s.Phases != nil && o.Phases != nil {
		return s.Phases.merge(o.Phases)
	}
	return nil
}

// TagKey writes the tags that select a threshold's requests in one
// canonical form, "method:GET,status:200": sorted, and without scenario,
// which selects every request of the scenario it names. "" selects every
// request.
func TagKey(tags map[string]string) string {
	var parts []string
	for k, v := range tags {
		if k != "scenario" {
			parts = append(parts, k+":"+v)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// nameOnly returns the request name when the tags select by name alone,
// which the run's per-name recorders (Result.ByName) answer.
func nameOnly(tags map[string]string) (string, bool) {
	name, ok := tags["name"]
	if !ok {
		return "", false
	}
	for k := range tags {
		if k != "name" && k != "scenario" {
			return "", false
		}
	}
	return name, true
}

// needsTagSet reports whether th is judged on recorders of its own tag
// set: any tags but none, or a request name alone on a metric the
// per-name recorders do not hold (a phase).
func needsTagSet(th Threshold) bool {
	if TagKey(th.Tags) == "" {
		return false
	}
	_, byName := nameOnly(th.Tags)
	return !byName || isPhase(th.Metric)
}

// expectation is what an expected_response tag asks for.
type expectation uint8

const (
	expectAny expectation = iota
	expectTrue
	expectFalse
)

// tagFilter picks the requests of one tag set while the run goes: the
// steps whose name and method match, then the status and whether it was
// expected. It is read on every request, so it is a few comparisons.
type tagFilter struct {
	key      string
	steps    []bool // by Step.idx
	status   int    // 0: any
	expected expectation
	phases   bool // a threshold on the set reads phases
}

// matches reports whether the outcome o of a request of step idx is one
// the filter selects. A dropped request was never answered, so only
// filters without status and expected_response select it.
func (f *tagFilter) matches(idx int, o *outcome.Outcome) bool {
	if !f.steps[idx] {
		return false
	}
	if f.status != 0 && o.Status != f.status {
		return false
	}
	switch f.expected {
	case expectTrue:
		return o.Class != outcome.ClassDropped && !o.Class.RequestFailed()
	case expectFalse:
		return o.Class != outcome.ClassDropped && o.Class.RequestFailed()
	}
	return true
}

// checkTags checks a threshold's tags against the test: each tag one
// relia splits by, each value one the test can produce. It returns the
// filter of the tags' set when the threshold needs one.
func (t *Test) checkTags(th Threshold) (*tagFilter, error) {
	if isJourneyMetric(th.Metric) {
		return nil, t.checkJourneyTags(th)
	}
	for _, k := range slices.Sorted(maps.Keys(th.Tags)) {
		v := th.Tags[k]
		switch k {
		case "name":
			if !slices.Contains(t.names, v) {
				return nil, fmt.Errorf("no request is named %q (requests: %s)", v, strings.Join(t.names, ", "))
			}
		case "method":
			if methods := t.methods(); !slices.Contains(methods, v) {
				return nil, fmt.Errorf("tag method:%s: no request uses that method (methods: %s)", v, strings.Join(methods, ", "))
			}
		case "status":
			if code, err := strconv.Atoi(v); err != nil || code < 100 || code > 599 {
				return nil, fmt.Errorf("tag status:%s: want an HTTP status from 100 to 599", v)
			}
		case "expected_response":
			if v != "true" && v != "false" {
				return nil, fmt.Errorf("tag expected_response:%s: want true or false", v)
			}
		case "scenario":
			if v != t.Name {
				return nil, fmt.Errorf("tag scenario:%s: this scenario is named %q", v, t.Name)
			}
		case "journey":
			if len(t.journeys) == 0 {
				return nil, fmt.Errorf("tag journey:%s: this scenario has no journeys", v)
			}
			if !slices.ContainsFunc(t.journeys, func(j *Journey) bool { return j.Name == v }) {
				return nil, fmt.Errorf("tag journey:%s: no journey is named %q (journeys: %s)", v, v, journeyNames(t.journeys))
			}
		case "group":
			if len(t.groups) == 0 {
				return nil, fmt.Errorf("tag group:%s: this scenario has no groups (a journey's steps make them)", v)
			}
			if !slices.Contains(t.groups, v) {
				return nil, fmt.Errorf("tag group:%s: no journey has that group (groups: %s; k6 writes a group as ::name)", v, strings.Join(t.groups, ", "))
			}
		default:
			return nil, fmt.Errorf("tag %q: relia splits thresholds by %s", k, strings.Join(ThresholdTags, ", "))
		}
		if k != "scenario" && slices.Contains(wholeRunMetrics, th.Metric) {
			return nil, fmt.Errorf("tag %s: %s is measured for the whole run; only {scenario:...} may tag it", k, th.Metric)
		}
	}
	if !needsTagSet(th) {
		return nil, nil
	}
	f := &tagFilter{key: TagKey(th.Tags), steps: make([]bool, len(t.Steps)), phases: isPhase(th.Metric)}
	for i, s := range t.Steps {
		f.steps[i] = (th.Tags["name"] == "" || s.Name == th.Tags["name"]) && (th.Tags["method"] == "" || s.Method == th.Tags["method"]) &&
			(th.Tags["journey"] == "" || s.journey == th.Tags["journey"]) && (th.Tags["group"] == "" || s.group == th.Tags["group"])
	}
	if v, ok := th.Tags["status"]; ok {
		f.status, _ = strconv.Atoi(v)
	}
	switch th.Tags["expected_response"] {
	case "true":
		f.expected = expectTrue
	case "false":
		f.expected = expectFalse
	}
	return f, nil
}

// methods lists the methods of the test's requests.
func (t *Test) methods() []string {
	var out []string
	for _, s := range t.Steps {
		if !slices.Contains(out, s.Method) {
			out = append(out, s.Method)
		}
	}
	return out
}

// addTagFilter adds f to the test's filters, or widens the one of the
// same set to record phases too.
func (t *Test) addTagFilter(f *tagFilter) error {
	for _, g := range t.filters {
		if g.key == f.key {
			g.phases = g.phases || f.phases
			return nil
		}
	}
	if len(t.filters) == MaxTagSets {
		return fmt.Errorf("tags {%s}: the thresholds name more than %d tag sets; relia records each set apart and keeps at most %d", f.key, MaxTagSets, MaxTagSets)
	}
	t.filters = append(t.filters, f)
	return nil
}
