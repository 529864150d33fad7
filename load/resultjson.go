package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// ResultSchema is the value of the "schema" field of a results file.
// Readers reject other values.
const ResultSchema = "relia/load/v1"

// The results file (--out results.json), schema "relia/load/v1". Every
// recorder is an outcome recorder in its own schema, relia/outcome/v1,
// which carries the HDR histograms, so results merge exactly:
//
//	{
//	  "schema": "relia/load/v1",
//	  "scenario": "checkout", "labels": {...},
//	  "model": "open",                      // or "closed"
//	  "preset": "stress",                   // omitted when none
//	  "seed": 24301,
//	  "segments": ["0/4"],                  // the segments merged into this file
//	  "start": "...", "end": "...",         // the load's start and end, RFC 3339
//	  "duration_ns": 30000000000,           // the profile's planned length
//	  "planned": 30000, "dispatched": 29990, "dropped": 10,   // open model
//	  "iterations": 0,                      // closed model
//	  "max_active": 50,                     // most VUs (closed) or workers (open) at once
//	  "late_after_ns": 10000000, "min_on_time": 0.9,   // the generator's own tolerance
//	  "result": "passed",                   // passed, failed, inconclusive, interrupted; informative
//	  "reasons": [],                        // why the result is not passed; informative
//	  "generator": {"cpu_ns": ..., "wall_ns": ..., "cores": 2, "has_cpu": true,
//	                "cpu_stall_ns": ..., "has_cpu_stall": true, "no_connection": 0,
//	                "peak_in_flight": 12, "max_in_flight": 100,
//	                "samples": [{"t": "...", "cpu_cores": 0.4, "cpu_pressure": 0.02}],
//	                "health": {...}},       // the judged Health; informative
//	  "metrics": {"http_req_duration": {"type": "trend", "contains": "time",
//	              "values": {"count": 1000, "avg": 1.2, "min": 0.3, "med": 1.1, "max": 9.8,
//	                         "p(90)": 2.1, "p(95)": 2.5, "p(99)": 4.0},
//	              "thresholds": {"p(95)<200": {"ok": true, "value": 2.5}}}, ...},
//	                                        // k6's summary shape; informative, recomputed on write
//	  "step_length_ns": 0, "step_targets": [],                // stress preset
//	  "thresholds": [{"metric": "http_req_duration{name:pay}", "expr": "p(99)<500",
//	                  "abort_on_fail": false, "delay_abort_eval_ns": 0, "window_ns": 0}],
//	  "verdict": [{"threshold": "...", "value": 212.5, "passed": true, ...}], // informative; recomputed on read
//	  "requests": {relia/outcome/v1},       // every request
//	  "by_name": {"pay": {relia/outcome/v1}},
//	  "lag": {relia/outcome/v1},            // scheduling lag as latency (open model)
//	  "checks": {relia/outcome/v1},         // one outcome per check: ok or check
//	  "by_check": {"pay: status in [200]": {relia/outcome/v1}},
//	  "phases": {"connect": {relia/outcome/v1},   // connecting as latency, tls_handshaking as service time
//	             "request": {...},           // blocked, sending
//	             "response": {...}},         // waiting, receiving
//	  "iteration_lengths": {relia/outcome/v1},    // closed model: one per completed iteration
//	  "by_tags": {"method:GET,status:200": {"requests": {...}, "checks": {...}, "phases": {...}}},
//	  "journeys": {"all": {relia/outcome/v1},     // journey tests: one outcome per journey walked
//	               "by_journey": {"checkout": {...}},
//	               "groups": {...}, "by_group": {"::cart": {...}}},
//	  "vus_max": 50,
//	  "traces": {"sampled": 120, "failed": 2, "failed_samples": [{"trace_id": "...", "name": "pay",
//	             "start": "...", "status": 503, "class": "status"}]},
//	  "active": [{"t": "...", "v": 50}],    // VUs or in flight, per second
//	  "setup": {"name": "login", "status": 200, "latency_ns": 1200000},
//	  "teardown": null, "teardown_error": "", "stopped": ""
//	}
type resultJSON struct {
	Schema      string                       `json:"schema"`
	Scenario    string                       `json:"scenario"`
	Labels      map[string]string            `json:"labels,omitempty"`
	Model       Model                        `json:"model"`
	Preset      string                       `json:"preset,omitempty"`
	Seed        uint64                       `json:"seed"`
	Segments    []string                     `json:"segments"`
	Start       time.Time                    `json:"start"`
	End         time.Time                    `json:"end"`
	DurationNS  int64                        `json:"duration_ns"`
	Planned     uint64                       `json:"planned"`
	Dispatched  uint64                       `json:"dispatched"`
	Dropped     uint64                       `json:"dropped"`
	Iterations  uint64                       `json:"iterations"`
	MaxActive   int                          `json:"max_active"`
	LateAfterNS int64                        `json:"late_after_ns"`
	MinOnTime   *float64                     `json:"min_on_time"`
	ResultText  json.RawMessage              `json:"result,omitempty"`
	Reasons     json.RawMessage              `json:"reasons,omitempty"`
	Generator   *generatorJSON               `json:"generator,omitempty"`
	Metrics     json.RawMessage              `json:"metrics,omitempty"`
	StepLenNS   int64                        `json:"step_length_ns"`
	StepTargets []float64                    `json:"step_targets"`
	Thresholds  []thresholdJSON              `json:"thresholds"`
	Verdict     []verdictJSON                `json:"verdict"`
	Requests    *outcome.Recorder            `json:"requests"`
	ByName      map[string]*outcome.Recorder `json:"by_name"`
	Lag         *outcome.Recorder            `json:"lag"`
	Checks      *outcome.Recorder            `json:"checks"`
	ByCheck     map[string]*outcome.Recorder `json:"by_check"`
	Phases      *PhaseRecorders              `json:"phases,omitempty"`
	Iters       *outcome.Recorder            `json:"iteration_lengths,omitempty"`
	ByTags      map[string]*TagSet           `json:"by_tags,omitempty"`
	Journeys    *JourneyRecorders            `json:"journeys,omitempty"`
	VUsMax      int                          `json:"vus_max,omitempty"`
	Traces      *TraceStats                  `json:"traces,omitempty"`
	Active      []Sample                     `json:"active"`
	Setup       *StepReport                  `json:"setup"`
	Teardown    *StepReport                  `json:"teardown"`
	TeardownErr string                       `json:"teardown_error,omitempty"`
	Stopped     string                       `json:"stopped,omitempty"`
}

type generatorJSON struct {
	CPUNS        int64           `json:"cpu_ns"`
	WallNS       int64           `json:"wall_ns"`
	Cores        int             `json:"cores"`
	HasCPU       bool            `json:"has_cpu"`
	StallNS      int64           `json:"cpu_stall_ns"`
	HasStall     bool            `json:"has_cpu_stall"`
	NoConnection int64           `json:"no_connection"`
	PeakInFlight int             `json:"peak_in_flight"`
	MaxInFlight  int             `json:"max_in_flight"`
	Samples      []HealthSample  `json:"samples"`
	Health       json.RawMessage `json:"health,omitempty"`
}

type thresholdJSON struct {
	Metric       string `json:"metric"`
	Expr         string `json:"expr"`
	AbortOnFail  bool   `json:"abort_on_fail"`
	DelayAbortNS int64  `json:"delay_abort_eval_ns"`
	WindowNS     int64  `json:"window_ns"`
}

type verdictJSON struct {
	Threshold     string  `json:"threshold"`
	Value         float64 `json:"value"`
	NoData        bool    `json:"no_data,omitempty"`
	Passed        bool    `json:"passed"`
	Windows       int     `json:"windows,omitempty"`
	FailedWindows int     `json:"failed_windows,omitempty"`
}

// MarshalJSON writes the result in the relia/load/v1 schema, with its
// judgement: the thresholds' verdict, the generator's health and the
// summary figures. Operators in thresholds are written as they are
// ("p(95)<200"), not escaped for HTML; encoders that re-escape the
// output (json.Marshal of a value holding a Result) undo that, so write
// a result with WriteJSON.
func (r *Result) MarshalJSON() ([]byte, error) {
	doc := resultJSON{
		Schema: ResultSchema, Scenario: r.Scenario, Labels: r.Labels, Model: r.Model, Preset: r.Preset,
		Seed: r.Seed, Start: r.Start, End: r.End, DurationNS: int64(r.Duration),
		Planned: r.Planned, Dispatched: r.Dispatched, Dropped: r.Dropped, Iterations: r.Iterations, MaxActive: r.MaxActive,
		LateAfterNS: int64(r.LateAfter), MinOnTime: &r.MinOnTime, StepLenNS: int64(r.StepLength), StepTargets: r.StepTargets,
		Thresholds: []thresholdJSON{}, Verdict: []verdictJSON{},
		Requests: r.Requests, ByName: r.ByName, Lag: r.Lag, Checks: r.Checks, ByCheck: r.ByCheck,
		Active: r.Active, Setup: r.Setup, Teardown: r.Teardown, TeardownErr: r.TeardownError, Stopped: r.Stopped,
		Phases: r.Phases, Iters: r.Iters, ByTags: r.ByTags, VUsMax: r.VUsMax, Journeys: r.Journeys,
	}
	if r.Traces.Sampled > 0 {
		doc.Traces = &r.Traces
	}
	if doc.StepTargets == nil {
		doc.StepTargets = []float64{}
	}
	if doc.Active == nil {
		doc.Active = []Sample{}
	}
	for _, s := range r.Segments {
		doc.Segments = append(doc.Segments, s.String())
	}
	for _, th := range r.Thresholds {
		doc.Thresholds = append(doc.Thresholds, thresholdJSON{Metric: ThresholdRef(th), Expr: th.Expr,
			AbortOnFail: th.AbortOnFail, DelayAbortNS: int64(th.DelayAbortEval), WindowNS: int64(th.Window)})
	}
	j := r.Judge()
	for _, v := range j.Thresholds {
		doc.Verdict = append(doc.Verdict, verdictJSON{Threshold: v.String(), Value: v.Value, NoData: v.NoData,
			Passed: v.Passed, Windows: v.Windows, FailedWindows: v.FailedWindows})
	}
	g := r.Generator
	doc.Generator = &generatorJSON{CPUNS: int64(g.CPU), WallNS: int64(g.Wall), Cores: g.Cores, HasCPU: g.HasCPU,
		StallNS: int64(g.Stall), HasStall: g.HasStall, NoConnection: g.NoConnection, PeakInFlight: g.PeakInFlight,
		MaxInFlight: g.MaxInFlight, Samples: g.Samples}
	if doc.Generator.Samples == nil {
		doc.Generator.Samples = []HealthSample{}
	}
	reasons := j.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	var err error
	if doc.ResultText, err = marshalPlain(j.Result); err != nil {
		return nil, err
	}
	if doc.Reasons, err = marshalPlain(reasons); err != nil {
		return nil, err
	}
	if doc.Generator.Health, err = marshalPlain(j.Generator); err != nil {
		return nil, err
	}
	if doc.Metrics, err = marshalPlain(r.SummaryMetrics(j.Thresholds)); err != nil {
		return nil, err
	}
	return marshalPlain(doc)
}

// marshalPlain is json.Marshal without escaping <, > and & for HTML:
// thresholds hold comparisons, and a results file is read by people and
// jq, not embedded in pages.
func marshalPlain(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// WriteJSON writes the result (MarshalJSON's document) and a newline to
// w, without escaping it for HTML.
func (r *Result) WriteJSON(w io.Writer) error {
	data, err := r.MarshalJSON()
	if err != nil {
		return fmt.Errorf("writing load results: %w", err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("writing load results: %w", err)
	}
	return nil
}

// UnmarshalJSON reads a results file, checking its schema, its thresholds
// and every recorder.
func (r *Result) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc resultJSON
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("decoding load result: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("decoding load result: data after the result")
	}
	if doc.Schema != ResultSchema {
		return fmt.Errorf("decoding load result: schema %q is not %q", doc.Schema, ResultSchema)
	}
	if doc.Model != Open && doc.Model != Closed {
		return fmt.Errorf("decoding load result: model %q is not %q or %q", doc.Model, Open, Closed)
	}
	if doc.Requests == nil || doc.Lag == nil || doc.Checks == nil {
		return errors.New("decoding load result: requests, lag and checks are required")
	}
	out := Result{
		Scenario: doc.Scenario, Labels: doc.Labels, Model: doc.Model, Preset: doc.Preset, Seed: doc.Seed,
		Start: doc.Start, End: doc.End, Duration: time.Duration(doc.DurationNS),
		Planned: doc.Planned, Dispatched: doc.Dispatched, Dropped: doc.Dropped, Iterations: doc.Iterations, MaxActive: doc.MaxActive,
		LateAfter: time.Duration(doc.LateAfterNS), MinOnTime: DefaultMinOnTime, StepLength: time.Duration(doc.StepLenNS), StepTargets: doc.StepTargets,
		Requests: doc.Requests, ByName: doc.ByName, Lag: doc.Lag, Checks: doc.Checks, ByCheck: doc.ByCheck,
		Active: doc.Active, Setup: doc.Setup, Teardown: doc.Teardown, TeardownError: doc.TeardownErr, Stopped: doc.Stopped,
		Phases: doc.Phases, Iters: doc.Iters, ByTags: doc.ByTags, VUsMax: doc.VUsMax, Journeys: doc.Journeys,
	}
	if out.Journeys != nil {
		if err := out.Journeys.valid(); err != nil {
			return fmt.Errorf("decoding load result: %w", err)
		}
	}
	if doc.Traces != nil {
		if doc.Traces.Sampled < 0 || doc.Traces.Failed < 0 || doc.Traces.Failed > doc.Traces.Sampled {
			return errors.New("decoding load result: traces: failed must be within [0, sampled]")
		}
		if len(doc.Traces.FailedSamples) > MaxFailedTraces {
			return fmt.Errorf("decoding load result: traces: more than %d failed samples", MaxFailedTraces)
		}
		out.Traces = *doc.Traces
	}
	if doc.VUsMax < 0 {
		return errors.New("decoding load result: vus_max is negative")
	}
	if out.Phases != nil {
		if err := out.Phases.valid(); err != nil {
			return fmt.Errorf("decoding load result: %w", err)
		}
	}
	if out.ByTags == nil {
		out.ByTags = map[string]*TagSet{}
	}
	for k, s := range out.ByTags {
		if s == nil || s.Requests == nil || s.Checks == nil {
			return fmt.Errorf("decoding load result: by_tags %q: requests and checks are required", k)
		}
		if s.Phases != nil {
			if err := s.Phases.valid(); err != nil {
				return fmt.Errorf("decoding load result: by_tags %q: %w", k, err)
			}
		}
	}
	if doc.MinOnTime != nil {
		if m := *doc.MinOnTime; m < 0 || m > 1 {
			return fmt.Errorf("decoding load result: min_on_time %v is not within [0, 1]", m)
		}
		out.MinOnTime = *doc.MinOnTime
	}
	if g := doc.Generator; g != nil {
		if g.CPUNS < 0 || g.WallNS < 0 || g.StallNS < 0 || g.Cores < 0 || g.NoConnection < 0 {
			return errors.New("decoding load result: generator: negative figures")
		}
		out.Generator = GeneratorStats{CPU: time.Duration(g.CPUNS), Wall: time.Duration(g.WallNS), Cores: g.Cores, HasCPU: g.HasCPU,
			Stall: time.Duration(g.StallNS), HasStall: g.HasStall, NoConnection: g.NoConnection, PeakInFlight: g.PeakInFlight,
			MaxInFlight: g.MaxInFlight, Samples: g.Samples}
	}
	if out.ByName == nil {
		out.ByName = map[string]*outcome.Recorder{}
	}
	if out.ByCheck == nil {
		out.ByCheck = map[string]*outcome.Recorder{}
	}
	for k, v := range out.ByName {
		if v == nil {
			return fmt.Errorf("decoding load result: by_name %q is null", k)
		}
	}
	for k, v := range out.ByCheck {
		if v == nil {
			return fmt.Errorf("decoding load result: by_check %q is null", k)
		}
	}
	for _, s := range doc.Segments {
		seg, err := ParseSegment(s)
		if err != nil {
			return fmt.Errorf("decoding load result: %w", err)
		}
		out.Segments = append(out.Segments, seg)
	}
	if len(out.Segments) == 0 {
		return errors.New("decoding load result: no segments")
	}
	for i, tj := range doc.Thresholds {
		th, err := ParseThreshold(tj.Metric, tj.Expr)
		if err != nil {
			return fmt.Errorf("decoding load result: thresholds[%d]: %w", i, err)
		}
		if tj.DelayAbortNS < 0 || tj.WindowNS < 0 {
			return fmt.Errorf("decoding load result: thresholds[%d]: negative duration", i)
		}
		th.AbortOnFail, th.DelayAbortEval, th.Window = tj.AbortOnFail, time.Duration(tj.DelayAbortNS), time.Duration(tj.WindowNS)
		out.Thresholds = append(out.Thresholds, th)
	}
	*r = out
	return nil
}

// ReadResult reads a results file.
func ReadResult(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading result: %w", err)
	}
	r := &Result{}
	if err := r.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Merge combines the results of the segments of one distributed test
// into the result of the whole: every recorder is added exactly (counts
// and histogram cells are sums), active counts are summed per second, and
// the thresholds are then judged on the whole. The results must come
// from the same scenario, model and seed, with disjoint segments of the
// same split.
func Merge(results ...*Result) (*Result, error) {
	if len(results) == 0 {
		return nil, errors.New("merging load results: nothing to merge")
	}
	first := results[0]
	out := &Result{
		Scenario: first.Scenario, Labels: first.Labels, Model: first.Model, Preset: first.Preset, Seed: first.Seed,
		Start: first.Start, End: first.End, Duration: first.Duration, LateAfter: first.LateAfter, MinOnTime: first.MinOnTime,
		StepLength: first.StepLength, StepTargets: first.StepTargets, Thresholds: first.Thresholds,
		Requests: newRecorder(), ByName: map[string]*outcome.Recorder{}, Lag: newRecorder(),
		Checks: newRecorder(), ByCheck: map[string]*outcome.Recorder{},
		Setup: first.Setup, Teardown: first.Teardown, ByTags: map[string]*TagSet{},
	}
	// Results written before relia measured phases and iterations have
	// none; the merge has them only when every part does.
	if everyResult(results, func(r *Result) bool { return r.Phases != nil }) {
		out.Phases = newPhaseRecorders()
	}
	if everyResult(results, func(r *Result) bool { return r.Iters != nil }) {
		out.Iters = newRecorder()
	}
	if everyResult(results, func(r *Result) bool { return r.Journeys != nil }) {
		out.Journeys = &JourneyRecorders{All: newRecorder(), ByJourney: map[string]*outcome.Recorder{},
			Groups: newRecorder(), ByGroup: map[string]*outcome.Recorder{}}
	}
	active := map[time.Time]int{}
	seen := map[int]bool{}
	var stopped []string
	for i, r := range results {
		if err := compatible(first, r); err != nil {
			return nil, fmt.Errorf("merging load results: result %d: %w", i+1, err)
		}
		for _, s := range r.Segments {
			if s.Count != first.Segments[0].Count {
				return nil, fmt.Errorf("merging load results: segment %s and segment %s split the test differently", s, first.Segments[0])
			}
			if seen[s.Index] {
				return nil, fmt.Errorf("merging load results: segment %s appears twice", s)
			}
			seen[s.Index] = true
			out.Segments = append(out.Segments, s)
		}
		if r.Start.Before(out.Start) {
			out.Start = r.Start
		}
		if r.End.After(out.End) {
			out.End = r.End
		}
		out.Planned += r.Planned
		out.Dispatched += r.Dispatched
		out.Dropped += r.Dropped
		out.Iterations += r.Iterations
		out.MaxActive += r.MaxActive
		out.VUsMax += r.VUsMax
		out.Traces.merge(r.Traces)
		if i == 0 {
			out.Generator = r.Generator
			out.Generator.Samples = slices.Clone(r.Generator.Samples)
		} else {
			out.Generator.merge(r.Generator)
		}
		if err := mergeRecorders(out, r); err != nil {
			return nil, fmt.Errorf("merging load results: result %d: %w", i+1, err)
		}
		for _, s := range r.Active {
			active[s.T] += s.V
		}
		if r.Stopped != "" && !slices.Contains(stopped, r.Stopped) {
			stopped = append(stopped, r.Stopped)
		}
		if r.TeardownError != "" && out.TeardownError == "" {
			out.TeardownError = r.TeardownError
		}
	}
	slices.SortFunc(out.Segments, func(a, b Segment) int { return a.Index - b.Index })
	for _, t := range slices.SortedFunc(maps.Keys(active), func(a, b time.Time) int { return a.Compare(b) }) {
		out.Active = append(out.Active, Sample{T: t, V: active[t]})
	}
	for i, s := range stopped {
		if i > 0 {
			out.Stopped += "; "
		}
		out.Stopped += s
	}
	return out, nil
}

func compatible(a, b *Result) error {
	switch {
	case a.Scenario != b.Scenario:
		return fmt.Errorf("scenario %q is not %q", b.Scenario, a.Scenario)
	case a.Model != b.Model:
		return fmt.Errorf("model %s is not %s", b.Model, a.Model)
	case a.Seed != b.Seed:
		return fmt.Errorf("seed %d is not %d: the segments made different choices", b.Seed, a.Seed)
	case a.Duration != b.Duration:
		return fmt.Errorf("duration %s is not %s", b.Duration, a.Duration)
	case a.LateAfter != b.LateAfter || a.MinOnTime != b.MinOnTime:
		return fmt.Errorf("lateAfter %s and minOnTime %g are not %s and %g", b.LateAfter, b.MinOnTime, a.LateAfter, a.MinOnTime)
	case len(b.Segments) == 0:
		return errors.New("no segments")
	}
	ta, tb := thresholdKeys(a), thresholdKeys(b)
	if !slices.Equal(ta, tb) {
		return fmt.Errorf("thresholds %v are not %v", tb, ta)
	}
	return nil
}

func thresholdKeys(r *Result) []string {
	var out []string
	for _, th := range r.Thresholds {
		out = append(out, fmt.Sprintf("%s %s %v %s %s", ThresholdRef(th), th.Expr, th.AbortOnFail, th.DelayAbortEval, th.Window))
	}
	return out
}

// everyResult reports whether ok holds for every result.
func everyResult(rs []*Result, ok func(*Result) bool) bool {
	for _, r := range rs {
		if !ok(r) {
			return false
		}
	}
	return true
}

func mergeRecorders(out, r *Result) error {
	pairs := [][2]*outcome.Recorder{{out.Requests, r.Requests}, {out.Lag, r.Lag}, {out.Checks, r.Checks}}
	if out.Iters != nil {
		pairs = append(pairs, [2]*outcome.Recorder{out.Iters, r.Iters})
	}
	for _, p := range pairs {
		if err := p[0].Merge(p[1]); err != nil {
			return err
		}
	}
	if out.Phases != nil {
		if err := out.Phases.merge(r.Phases); err != nil {
			return fmt.Errorf("phases: %w", err)
		}
	}
	if out.Journeys != nil {
		if err := out.Journeys.merge(r.Journeys); err != nil {
			return fmt.Errorf("journeys: %w", err)
		}
	}
	for k, s := range r.ByTags {
		if out.ByTags[k] == nil {
			out.ByTags[k] = newTagSet(s.Phases != nil)
		}
		if err := out.ByTags[k].merge(s); err != nil {
			return fmt.Errorf("by_tags %s: %w", k, err)
		}
	}
	for _, m := range [][2]map[string]*outcome.Recorder{{out.ByName, r.ByName}, {out.ByCheck, r.ByCheck}} {
		for k, rec := range m[1] {
			if m[0][k] == nil {
				m[0][k] = newRecorder()
			}
			if err := m[0][k].Merge(rec); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	return nil
}
