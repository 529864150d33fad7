package load

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Result is what a run measured: every request in outcome recorders
// (overall, per request name, per check) plus the open model's scheduling
// lag and the per-second active count. Results of the segments of one
// distributed test merge exactly (Merge), and thresholds are judged on a
// Result (Evaluate), so a merged result is judged like a single run.
type Result struct {
	Scenario string
	Labels   map[string]string
	Model    Model
	Preset   string
	Seed     uint64
	// Segments are the segments the result covers: one for a single run,
	// several after Merge.
	Segments []Segment
	// Start and End are when the load started and ended (after setup and
	// before teardown).
	Start, End time.Time
	// Duration is the profile's planned length.
	Duration time.Duration
	// Planned is how many arrivals the covered segments were to send (open
	// model); Dispatched and Dropped how many were sent and dropped.
	Planned, Dispatched, Dropped uint64
	// Iterations counts closed-model iterations.
	Iterations uint64
	// MaxActive is the most VUs (closed model) or workers (open model)
	// that ran at once.
	MaxActive int
	// LateAfter is the lateness beyond which an arrival was not on time;
	// MinOnTime the share of sent arrivals that must be on time for the
	// run to be judged (0: the generator does not judge itself).
	LateAfter time.Duration
	MinOnTime float64
	// StepLength and StepTargets describe the stress preset's steps.
	StepLength  time.Duration
	StepTargets []float64
	// Thresholds are the test's thresholds, judged by Evaluate.
	Thresholds []Threshold

	// Requests holds every request: latency from the scheduled time in
	// the open model (from the send in the closed model), service time
	// from the send, status, class (dropped arrivals as ClassDropped,
	// failed checks as ClassCheck), bytes.
	Requests *outcome.Recorder
	// ByName holds the same per request name.
	ByName map[string]*outcome.Recorder
	// Lag holds, as latency, how late each open-model request was sent
	// against its schedule.
	Lag *outcome.Recorder
	// Checks holds one outcome per check run: ClassOK when it passed,
	// ClassCheck when it failed; ByCheck the same per "name: check".
	Checks  *outcome.Recorder
	ByCheck map[string]*outcome.Recorder
	// Phases hold every sent request's phases (http_req_waiting and the
	// others); nil in results written before relia measured them.
	Phases *PhaseRecorders
	// Iters holds one outcome per completed closed-model iteration, its
	// latency the iteration's length (request and think time); nil in the
	// open model, where an iteration is one request.
	Iters *outcome.Recorder
	// ByTags holds, per tag set the thresholds split by (TagKey; a request
	// name alone is ByName's), the requests, checks and phases the tags
	// select.
	ByTags map[string]*TagSet
	// Journeys hold the journeys and groups of a journey test, one
	// outcome per journey or group (journey_result.go); nil for a test of
	// requests.
	Journeys *JourneyRecorders
	// Active is the number of VUs (closed) or requests in flight (open),
	// sampled every second.
	Active []Sample
	// VUsMax is the most VUs the covered segments could run: the closed
	// model's peak, the open model's cap on requests in flight.
	VUsMax int
	// Traces count the requests that carried a traceparent and keep the
	// trace ids of the first that failed.
	Traces TraceStats
	// Generator is what the generator measured about itself: its CPU,
	// the host's CPU pressure, connections it lacked. Health judges it
	// with the lag.
	Generator GeneratorStats

	Setup, Teardown *StepReport
	TeardownError   string
	// Stopped says why the load ended before its profile did: "interrupted",
	// a failed abortOnFail threshold, or the knee of a stress test.
	Stopped string
}

// Sample is a gauge's value at a whole second.
type Sample struct {
	T time.Time `json:"t"`
	V int       `json:"v"`
}

// StepReport is the outcome of a setup or teardown request.
type StepReport struct {
	Name    string        `json:"name"`
	Status  int           `json:"status"`
	Latency time.Duration `json:"latency_ns"`
	Error   string        `json:"error,omitempty"`
	// Attempts is how many times the request was sent: a setup request
	// that failed transiently is sent again (up to 3 times).
	Attempts int `json:"attempts,omitempty"`
}

func newRecorder() *outcome.Recorder {
	r, _ := outcome.NewRecorder(outcome.Options{}) // the defaults are valid
	return r
}

func newResult(t *Test, seg Segment) (*Result, error) {
	r := &Result{
		Scenario: t.Name, Labels: t.Labels, Model: t.Model, Preset: t.Preset, Seed: t.Seed,
		Segments: []Segment{seg}, Duration: t.Duration(), LateAfter: t.LateAfter, MinOnTime: t.MinOnTime,
		StepLength: t.StepLength, StepTargets: t.StepTargets, Thresholds: t.Thresholds,
		Requests: newRecorder(), ByName: map[string]*outcome.Recorder{}, Lag: newRecorder(),
		Checks: newRecorder(), ByCheck: map[string]*outcome.Recorder{},
		Phases: newPhaseRecorders(), ByTags: map[string]*TagSet{},
	}
	if t.Schedule != nil {
		r.Planned = seg.Share(t.Schedule.Total())
		r.VUsMax = max(t.MaxInFlight, 1)
	} else {
		r.Iters = newRecorder()
		r.VUsMax = int(seg.Share(uint64(t.VUs.Max())))
	}
	for _, f := range t.filters {
		r.ByTags[f.key] = newTagSet(f.phases)
	}
	if t.journeys != nil {
		r.Journeys = newJourneyRecorders(t)
	}
	for _, s := range t.Steps {
		if r.ByName[s.Name] == nil {
			r.ByName[s.Name] = newRecorder()
		}
		for i := range s.Checks {
			if k := checkKey(s, &s.Checks[i]); r.ByCheck[k] == nil {
				r.ByCheck[k] = newRecorder()
			}
		}
	}
	return r, nil
}

// checkKey names a check in breakdowns: "request: check".
func checkKey(s *Step, c *Check) string { return s.Name + ": " + c.Label() }

func (r *Result) addActive(t time.Time, v int) {
	r.Active = append(r.Active, Sample{T: t.UTC(), V: v})
}

// span returns the range of buckets the whole run covers.
func (r *Result) span() (from, to time.Time) {
	return r.Start.Truncate(time.Second), r.End
}

// ThresholdResult is a threshold judged on a Result.
type ThresholdResult struct {
	Threshold Threshold
	// Ref is the metric as written: "http_req_duration{name:login}".
	Ref string
	// Value is the observed value over the whole run, or for a windowed
	// threshold that of the first failed (or else the worst) window.
	Value float64
	// NoData is true when the metric had no samples; such a threshold
	// passes.
	NoData bool
	Passed bool
	// Windows and FailedWindows count a windowed threshold's windows;
	// WorstFrom is where the reported window starts.
	Windows, FailedWindows int
	WorstFrom              time.Time
}

// String is the threshold as written, with its window: "http_req_duration
// p(99)<500 (every 30s)".
func (tr ThresholdResult) String() string {
	s := tr.Ref + " " + tr.Threshold.Expr
	if tr.Threshold.Window > 0 {
		s += fmt.Sprintf(" (every %s)", tr.Threshold.Window)
	}
	return s
}

// EvaluateThresholds judges thresholds over a whole run for a load kind
// with metrics of its own (relia kafka load, relia load llm): value
// computes a threshold's metric, false when it has no data, which passes.
func EvaluateThresholds(ths []Threshold, value func(Threshold) (float64, bool)) []ThresholdResult {
	out := make([]ThresholdResult, 0, len(ths))
	for _, th := range ths {
		tr := ThresholdResult{Threshold: th, Ref: ThresholdRef(th)}
		v, ok := value(th)
		tr.Value, tr.NoData, tr.Passed = v, !ok, !ok || th.Holds(v)
		out = append(out, tr)
	}
	return out
}

// WriteThresholds writes the thresholds block of a text summary, one
// line per result ("  pass  metric expr  value"), as the summaries of
// relia's other load kinds print it; format writes a value in its
// metric's unit.
func WriteThresholds(w io.Writer, trs []ThresholdResult, format func(Threshold, float64) string) {
	if len(trs) == 0 {
		return
	}
	fmt.Fprintln(w, "thresholds:")
	for _, tr := range trs {
		mark, val := "pass", format(tr.Threshold, tr.Value)
		if !tr.Passed {
			mark = "FAIL"
		}
		if tr.NoData {
			val = "no data"
		}
		fmt.Fprintf(w, "  %s  %s  %s\n", mark, tr, val)
	}
}

// ValueText is the observed value in the metric's unit, with the failed
// windows of a windowed threshold: "212.50ms (3 of 28 windows failed)".
func (tr ThresholdResult) ValueText() string {
	if tr.NoData {
		return "no data"
	}
	s := FormatValue(tr.Threshold, tr.Value)
	if tr.Threshold.Window > 0 && tr.Windows > 0 {
		s += fmt.Sprintf(" (%d of %d windows failed)", tr.FailedWindows, tr.Windows)
	}
	return s
}

// Evaluate judges every threshold of the result.
func (r *Result) Evaluate() []ThresholdResult {
	out := make([]ThresholdResult, 0, len(r.Thresholds))
	for _, th := range r.Thresholds {
		out = append(out, r.evaluate(th))
	}
	return out
}

// AllPassed reports whether every threshold passed.
func AllPassed(rs []ThresholdResult) bool {
	for _, tr := range rs {
		if !tr.Passed {
			return false
		}
	}
	return true
}

func (r *Result) evaluate(th Threshold) ThresholdResult {
	tr := ThresholdResult{Threshold: th, Ref: ThresholdRef(th)}
	from, to := r.span()
	if th.Window <= 0 {
		v, ok := r.value(th, from, to, r.End.Sub(r.Start))
		tr.Value, tr.NoData, tr.Passed = v, !ok, !ok || th.Holds(v)
		return tr
	}
	n := int(math.Ceil(to.Sub(from).Seconds()))
	w := int(th.Window / time.Second)
	tr.Passed, tr.NoData = true, true
	worst := math.NaN()
	for i := 0; i == 0 || i+w <= n; i++ {
		wf := from.Add(time.Duration(i) * time.Second)
		wt := wf.Add(th.Window)
		length := th.Window
		if w >= n {
			wt, length = to, r.End.Sub(r.Start)
		}
		v, ok := r.value(th, wf, wt, length)
		if !ok {
			continue
		}
		tr.Windows++
		tr.NoData = false
		if !th.Holds(v) {
			tr.FailedWindows++
			if tr.Passed {
				tr.Passed, tr.Value, tr.WorstFrom = false, v, wf
			}
			continue
		}
		if tr.Passed && (math.IsNaN(worst) || worse(th.Op, v, worst)) {
			worst, tr.Value, tr.WorstFrom = v, v, wf
		}
	}
	return tr
}

// worse reports whether v is further than w from passing th's operator.
func worse(op Op, v, w float64) bool {
	switch op {
	case OpLess, OpLessEqual:
		return v > w
	case OpGreater, OpGreaterEqual:
		return v < w
	}
	return false
}

// ThresholdRef writes a threshold's metric as in a scenario:
// "http_req_duration{name:login}".
func ThresholdRef(th Threshold) string {
	if len(th.Tags) == 0 {
		return th.Metric
	}
	var tags []string
	for k, v := range th.Tags {
		tags = append(tags, k+":"+v)
	}
	slices.Sort(tags)
	return th.Metric + "{" + strings.Join(tags, ",") + "}"
}

// value computes a threshold's aggregate over the buckets starting in
// [from, to); length is what per-second rates divide by. ok is false when
// the metric has no samples there.
func (r *Result) value(th Threshold, from, to time.Time, length time.Duration) (v float64, ok bool) {
	if isJourneyMetric(th.Metric) {
		return r.journeyValue(th, from, to, length)
	}
	rec, phases := r.Requests, r.Phases
	var set *TagSet
	name, byName := nameOnly(th.Tags)
	switch {
	case needsTagSet(th):
		if set = r.ByTags[TagKey(th.Tags)]; set == nil {
			return 0, false
		}
		rec, phases = set.Requests, set.Phases
	case byName:
		if rec = r.ByName[name]; rec == nil {
			return 0, false
		}
	}
	switch th.Metric {
	case "schedule_lag":
		sum := r.Lag.Window(from, to)
		if sum.Latency.Count() == 0 {
			return 0, false
		}
		return trendValue(th, sum.Latency), true
	case "checks":
		var passed, total int64
		add := func(c *outcome.Recorder) {
			sum := c.Window(from, to)
			passed += sum.ByClass[outcome.ClassOK]
			total += sum.Total
		}
		switch {
		case set != nil:
			add(set.Checks)
		case byName:
			for k, c := range r.ByCheck {
				if strings.HasPrefix(k, name+": ") {
					add(c)
				}
			}
		default:
			add(r.Checks)
		}
		if total == 0 {
			return 0, false
		}
		return float64(passed) / float64(total), true
	case "vus":
		found := false
		for _, s := range r.Active {
			if !s.T.Before(from) && s.T.Before(to) {
				v, found = max(v, float64(s.V)), true
			}
		}
		return v, found
	case "vus_max":
		return float64(r.VUsMax), r.VUsMax > 0
	case "arrivals_on_time":
		lag := r.Lag.Window(from, to).Latency
		dropped := r.Requests.Window(from, to).ByClass[outcome.ClassDropped]
		scheduled := lag.Count() + dropped
		if scheduled == 0 {
			return 0, false
		}
		return float64(lag.CountAtOrBelow(r.LateAfter)) / float64(scheduled), true
	case "iterations", "iteration_duration":
		return r.iterationValue(th, from, to, length)
	}
	if isPhase(th.Metric) {
		h := phases.histogram(th.Metric, from, to)
		if h == nil || h.Count() == 0 {
			return 0, false
		}
		return trendValue(th, h), true
	}
	v, _, ok = SummaryValue(th, rec.Window(from, to), length)
	return v, ok
}

// iterationValue computes iterations and iteration_duration: in the open
// model an iteration is one arrival's request, which lasts its service
// time; in the closed model a VU's request and its think time, recorded
// in Iters as each completes.
func (r *Result) iterationValue(th Threshold, from, to time.Time, length time.Duration) (float64, bool) {
	n, h := r.iterations(from, to)
	if h == nil {
		return 0, false
	}
	if th.Metric == "iterations" {
		v, _, ok := counterValue(th, n, n, length)
		return v, ok
	}
	if h.Count() == 0 {
		return 0, false
	}
	return trendValue(th, h), true
}

// iterations returns the iterations completed in the buckets starting in
// [from, to) and the distribution of their lengths; a nil histogram when
// the result has no record of them (a closed-model results file written
// before relia kept one).
func (r *Result) iterations(from, to time.Time) (int64, *outcome.Histogram) {
	if r.Journeys != nil {
		// An iteration of a journey test is a journey.
		sum := r.Journeys.All.Window(from, to)
		return sum.Total, sum.Latency
	}
	if r.Model == Open {
		sum := r.Requests.Window(from, to)
		return sum.Sent(), sum.ServiceTime
	}
	if r.Iters == nil {
		return 0, nil
	}
	sum := r.Iters.Window(from, to)
	return sum.Total, sum.Latency
}

// SummaryValue computes a threshold's aggregate over one summary of
// requests lasting span, in k6's units: milliseconds for trends, a
// fraction for rates, a count or a count per second for counters. It
// serves the metrics a summary of requests holds: http_req_duration,
// http_req_service_duration, http_req_failed, http_reqs,
// dropped_iterations, data_received and data_sent; ok is false for
// others and when the summary holds nothing to aggregate. events is how
// many outcomes the value rests on. Load thresholds, the results file's
// summary figures and experiments all compute through it, so a figure
// means one thing everywhere.
func SummaryValue(th Threshold, sum outcome.Summary, span time.Duration) (v float64, events int64, ok bool) {
	counter := func(n int64) (float64, int64, bool) { return counterValue(th, n, sum.Sent(), span) }
	switch th.Metric {
	case "http_req_duration", "http_req_service_duration":
		h := sum.Latency
		if th.Metric == "http_req_service_duration" {
			h = sum.ServiceTime
		}
		if h.Count() == 0 {
			return 0, 0, false
		}
		return trendValue(th, h), h.Count(), true
	case "http_req_failed":
		rate, ok := sum.FailedRate()
		return rate, sum.Sent(), ok
	case "http_reqs":
		return counter(sum.Sent())
	case "dropped_iterations":
		return counter(sum.ByClass[outcome.ClassDropped])
	case "data_received":
		return counter(sum.BytesIn)
	case "data_sent":
		return counter(sum.BytesOut)
	}
	return 0, 0, false
}

// counterValue is a counter's aggregate: the count n, or n per second of
// span; events is what the value rests on.
func counterValue(th Threshold, n, events int64, span time.Duration) (float64, int64, bool) {
	if th.Aggregation != "rate" {
		return float64(n), events, true
	}
	if span <= 0 {
		return 0, 0, false
	}
	return float64(n) / span.Seconds(), events, true
}

// trendValue aggregates a latency histogram in milliseconds, as k6 does.
func trendValue(th Threshold, h *outcome.Histogram) float64 {
	return float64(th.Trend(h)) / float64(time.Millisecond)
}

// Trend aggregates a latency histogram as a trend threshold asks (avg,
// min, med, max or p(N)), so every consumer of thresholds reads a
// histogram the same way.
func (t Threshold) Trend(h *outcome.Histogram) time.Duration {
	switch t.Aggregation {
	case "avg":
		return h.Mean()
	case "min":
		return h.Min()
	case "med":
		return h.Quantile(0.5)
	case "max":
		return h.Max()
	case "p":
		return h.Quantile(t.Percentile / 100)
	}
	return 0
}

// abortReason judges the abortOnFail thresholds at now, each once its
// delay has passed: over the run so far, or a windowed one over its last
// whole window. It returns why to stop, or "".
func (r *Result) abortReason(start, now time.Time) string {
	for _, th := range r.Thresholds {
		if !th.AbortOnFail || now.Sub(start) < th.DelayAbortEval {
			continue
		}
		from, to, length := start.Truncate(time.Second), now, now.Sub(start)
		if th.Window > 0 {
			if now.Sub(start) < th.Window {
				continue
			}
			to = now.Truncate(time.Second)
			from, length = to.Add(-th.Window), th.Window
		}
		if v, ok := r.value(th, from, to, length); ok && !th.Holds(v) {
			return fmt.Sprintf("threshold %s %s failed (%s) after %s", ThresholdRef(th), th.Expr,
				FormatValue(th, v), now.Sub(start).Round(time.Second))
		}
	}
	return ""
}

// FormatLimit writes a threshold's own limit in the metric's unit as the
// user wrote it, without FormatValue's extra digits: "500ms", "5%",
// "90/s".
func FormatLimit(th Threshold) string {
	num := strconv.FormatFloat(th.Value, 'f', -1, 64)
	switch Metrics[th.Metric] {
	case Trend:
		return num + "ms"
	case Rate:
		return strconv.FormatFloat(th.Value*100, 'f', -1, 64) + "%"
	case Counter:
		if th.Metric == "data_received" || th.Metric == "data_sent" {
			return FormatValue(th, th.Value)
		}
		if th.Aggregation == "rate" {
			return num + "/s"
		}
	}
	return num
}

// FormatValue writes a threshold's observed value in the metric's unit,
// as every output prints it: "51.52ms" for trends, "88.11%" for rates,
// "1203" or "240.6/s" for counters ("1.2 MiB" for data). A rate is
// printed with more digits when two would make a failing value read as
// the threshold itself.
func FormatValue(th Threshold, v float64) string { return FormatValueIn(Metrics, th, v) }

// FormatValueIn is FormatValue for a threshold on a metric of another
// set than relia load's (relia kafka load's), as ParseThresholdIn parses
// them.
func FormatValueIn(metrics map[string]MetricKind, th Threshold, v float64) string {
	switch metrics[th.Metric] {
	case Trend:
		return fmt.Sprintf("%.2fms", v)
	case Rate:
		for digits := 2; ; digits++ {
			s := fmt.Sprintf("%.*f%%", digits, v*100)
			if digits >= 4 || th.Holds(v) || s != fmt.Sprintf("%.*f%%", digits, th.Value*100) {
				return s
			}
		}
	case Counter:
		data := th.Metric == "data_received" || th.Metric == "data_sent"
		switch {
		case th.Aggregation == "rate" && data:
			return bytesText(int64(v)) + "/s"
		case th.Aggregation == "rate":
			return fmt.Sprintf("%.1f/s", v)
		case data:
			return bytesText(int64(v))
		}
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

// StressStep is one step of a stress test as measured.
type StressStep struct {
	Step   int // 1-based
	Target float64
	From   time.Time
	// RPS is the achieved rate of sent requests; P99 their latency;
	// ErrorRate the share that failed.
	RPS       float64
	P99       time.Duration
	ErrorRate float64
	// Passed is false when a threshold failed over the step; Failed names
	// those thresholds.
	Passed bool
	Failed []string
}

// Knee is where a stress test broke: the first step whose thresholds
// failed, after the last one that held.
type Knee struct {
	// Found is false when every step held.
	Found bool
	// Step is the first failed step; LastGood the one before it (nil when
	// the first step already failed).
	Step     *StressStep
	LastGood *StressStep
}

// StressSteps judges the stress preset's thresholds step by step (nil
// for other tests); steps the run did not reach are left out.
func (r *Result) StressSteps() []StressStep {
	if r.StepLength <= 0 {
		return nil
	}
	out := []StressStep{}
	for i := range r.StepTargets {
		st, ok := r.stressStep(i, r.End)
		if !ok {
			break
		}
		out = append(out, st)
	}
	return out
}

// stressStep measures step i (0-based) over the part of it before end.
func (r *Result) stressStep(i int, end time.Time) (StressStep, bool) {
	from := r.Start.Add(time.Duration(i) * r.StepLength)
	to := from.Add(r.StepLength)
	if !from.Before(end) {
		return StressStep{}, false
	}
	if to.After(end) {
		to = end
	}
	sum := r.Requests.Window(from, to)
	st := StressStep{Step: i + 1, Target: r.StepTargets[i], From: from, Passed: true,
		RPS: float64(sum.Sent()) / to.Sub(from).Seconds(), P99: sum.Latency.Quantile(0.99)}
	st.ErrorRate, _ = sum.FailedRate()
	for _, th := range r.Thresholds {
		if th.Window > 0 {
			continue
		}
		if v, ok := r.value(th, from, to, to.Sub(from)); ok && !th.Holds(v) {
			st.Passed = false
			st.Failed = append(st.Failed, ThresholdRef(th)+" "+th.Expr)
		}
	}
	return st, true
}

// Knee finds the stress test's knee; nil for other tests.
func (r *Result) Knee() *Knee {
	steps := r.StressSteps()
	if steps == nil {
		return nil
	}
	k := &Knee{}
	for i := range steps {
		if !steps[i].Passed {
			k.Found, k.Step = true, &steps[i]
			return k
		}
		k.LastGood = &steps[i]
	}
	return k
}
