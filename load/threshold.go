package load

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MetricKind is how a metric aggregates, as in k6: a trend has a
// distribution (avg, min, med, max, p(N)), a rate is a share of true
// samples, a counter has a count and a per-second rate, a gauge a value.
type MetricKind uint8

// Metric kinds.
const (
	Trend MetricKind = iota + 1
	Rate
	Counter
	Gauge
)

// Metrics lists the metrics thresholds may name, with their kinds. Trends
// are in milliseconds, as in k6, so "p(95)<200" means 200 ms.
var Metrics = map[string]MetricKind{
	// Latency of each request. In the open model it runs from the scheduled
	// send time (corrected for coordinated omission); in the closed model
	// from the actual send.
	"http_req_duration": Trend,
	// Service time: from the actual send to the end of the response.
	"http_req_service_duration": Trend,
	// The phases of a request (see Phases): waiting for a free connection,
	// opening one (TCP, TLS), sending, waiting for the first byte of the
	// response (time to first byte), receiving the rest.
	"http_req_blocked":         Trend,
	"http_req_connecting":      Trend,
	"http_req_tls_handshaking": Trend,
	"http_req_sending":         Trend,
	"http_req_waiting":         Trend,
	"http_req_receiving":       Trend,
	// Iterations completed, and their length: in the open model one
	// arrival's request (its service time); in the closed model a VU's
	// request and its think time.
	"iterations":         Counter,
	"iteration_duration": Trend,
	// How late requests started against their schedule (open model).
	"schedule_lag": Trend,
	// Share of requests that failed (transport error or failing status).
	"http_req_failed": Rate,
	// Share of checks that passed.
	"checks": Rate,
	// Requests sent, and their rate per second.
	"http_reqs": Counter,
	// Arrivals the open model could not send (in-flight cap reached).
	"dropped_iterations": Counter,
	// Share of the open model's scheduled arrivals sent on time: neither
	// dropped nor started later than the scenario's lateAfter. A run that
	// could not offer its target rate fails on it.
	"arrivals_on_time": Rate,
	// Bytes received and sent.
	"data_received": Counter,
	"data_sent":     Counter,
	// Journeys completed (a counter: count, rate per second), their
	// length from the scheduled start (open model) or the first send
	// (closed), the share that succeeded (every request answered as
	// expected, every check passed), and the length of groups.
	MetricJourneys:        Counter,
	MetricJourneyDuration: Trend,
	MetricJourneySuccess:  Rate,
	MetricGroupDuration:   Trend,
	// Active virtual users (closed model) or in-flight requests.
	"vus": Gauge,
	// The most VUs the run could have: the closed model's peak, the open
	// model's cap on requests in flight.
	"vus_max": Gauge,
}

// Aggregations by metric kind.
var aggregations = map[MetricKind][]string{
	Trend:   {"avg", "min", "med", "max", "p(N)"},
	Rate:    {"rate"},
	Counter: {"count", "rate"},
	Gauge:   {"value"},
}

// Op is a threshold's comparison.
type Op string

// Comparison operators, as in k6.
const (
	OpLess         Op = "<"
	OpLessEqual    Op = "<="
	OpGreater      Op = ">"
	OpGreaterEqual Op = ">="
	OpEqual        Op = "=="
	OpNotEqual     Op = "!="
)

// Threshold is one pass/fail criterion on a metric, written as in k6:
// `http_req_duration{name:login}: ["p(99)<500"]`.
type Threshold struct {
	// Metric is the metric's name, e.g. "http_req_duration".
	Metric string
	// Tags restricts the metric to samples with these tags, e.g. name=login.
	Tags map[string]string
	// Expr is the expression as written, e.g. "p(99)<500".
	Expr string
	// Aggregation is "avg", "min", "med", "max", "p", "rate", "count" or
	// "value"; for "p", Percentile holds N (0-100).
	Aggregation string
	Percentile  float64
	Op          Op
	Value       float64
	// AbortOnFail stops the test as soon as the threshold fails, after
	// DelayAbortEval has passed since the start.
	AbortOnFail    bool
	DelayAbortEval time.Duration
	// Window, when set, makes the threshold hold over every sliding window
	// of this length (e.g. p(99) under 500 ms in every 30 s), not only over
	// the whole run.
	Window time.Duration
}

// ThresholdError says what is wrong with a threshold and where in the
// expression (Col, 1-based).
type ThresholdError struct {
	Metric, Expr string
	Col          int
	Msg          string
}

// Error formats the problem with the offending position marked.
func (e *ThresholdError) Error() string {
	if e.Col > 0 {
		return fmt.Sprintf("threshold %s %q at column %d: %s", e.Metric, e.Expr, e.Col, e.Msg)
	}
	return fmt.Sprintf("threshold %s %q: %s", e.Metric, e.Expr, e.Msg)
}

// ParseMetricRef splits "name{tag:value,tag2:value2}" into the metric name
// and its tags, checking the name is a known metric.
func ParseMetricRef(ref string) (string, map[string]string, error) {
	return parseMetricRef(Metrics, ref)
}

func parseMetricRef(metrics map[string]MetricKind, ref string) (string, map[string]string, error) {
	name, rest, hasTags := strings.Cut(ref, "{")
	name = strings.TrimSpace(name)
	if _, ok := metrics[name]; !ok {
		return "", nil, fmt.Errorf("unknown metric %q: relia's thresholds take %s", name, strings.Join(metricNames(metrics), ", "))
	}
	if !hasTags {
		return name, nil, nil
	}
	body, ok := strings.CutSuffix(strings.TrimSpace(rest), "}")
	if !ok {
		return "", nil, fmt.Errorf("metric %q: tag list is not closed with }", ref)
	}
	tags := map[string]string{}
	for _, pair := range strings.Split(body, ",") {
		k, v, ok := strings.Cut(pair, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return "", nil, fmt.Errorf("metric %q: tag %q: want key:value", ref, strings.TrimSpace(pair))
		}
		if _, dup := tags[k]; dup {
			return "", nil, fmt.Errorf("metric %q: tag %q given twice", ref, k)
		}
		tags[k] = v
	}
	return name, tags, nil
}

// ParseThreshold parses one k6-style threshold expression for a metric
// reference ("http_req_duration{name:login}", "p(99)<500"). Trend values
// are milliseconds; a Go duration ("500ms") is accepted too. Rate values
// are fractions (0.01) or percentages ("1%").
func ParseThreshold(metricRef, expr string) (Threshold, error) {
	return ParseThresholdIn(Metrics, metricRef, expr)
}

// ParseThresholdIn is ParseThreshold over another set of metrics, for
// parts of relia that measure figures of their own (Kafka's end-to-end
// latency and consumer lag) and judge them in the same syntax.
func ParseThresholdIn(metrics map[string]MetricKind, metricRef, expr string) (Threshold, error) {
	name, tags, err := parseMetricRef(metrics, metricRef)
	if err != nil {
		return Threshold{}, err
	}
	t := Threshold{Metric: name, Tags: tags, Expr: expr}
	fail := func(col int, format string, args ...any) (Threshold, error) {
		return Threshold{}, &ThresholdError{Metric: metricRef, Expr: expr, Col: col, Msg: fmt.Sprintf(format, args...)}
	}
	kind := metrics[name]

	// Aggregation: an identifier, or p(N).
	i := skipSpace(expr, 0)
	start := i
	for i < len(expr) && (expr[i] >= 'a' && expr[i] <= 'z') {
		i++
	}
	agg := expr[start:i]
	if agg == "" {
		return fail(start+1, "want an aggregation (%s)", strings.Join(aggregations[kind], ", "))
	}
	if agg == "p" {
		if i >= len(expr) || expr[i] != '(' {
			return fail(i+1, "want p(N), e.g. p(99)")
		}
		end := strings.IndexByte(expr[i:], ')')
		if end < 0 {
			return fail(i+1, "p( is not closed")
		}
		pct, err := strconv.ParseFloat(strings.TrimSpace(expr[i+1:i+end]), 64)
		if err != nil || math.IsNaN(pct) || pct < 0 || pct > 100 {
			return fail(i+2, "percentile %q: want a number from 0 to 100", expr[i+1:i+end])
		}
		t.Percentile = pct
		i += end + 1
	}
	t.Aggregation = agg
	if !aggregationAllowed(kind, agg) {
		return fail(start+1, "%s has no aggregation %q (want %s)", name, agg, strings.Join(aggregations[kind], ", "))
	}

	// Operator.
	i = skipSpace(expr, i)
	opStart := i
	for _, op := range []Op{OpLessEqual, OpGreaterEqual, "===", OpEqual, OpNotEqual, OpLess, OpGreater} {
		if strings.HasPrefix(expr[i:], string(op)) {
			t.Op = op
			if op == "===" {
				t.Op = OpEqual
			}
			i += len(op)
			break
		}
	}
	if t.Op == "" {
		return fail(opStart+1, "want a comparison (<, <=, >, >=, ==, !=)")
	}

	// Value.
	i = skipSpace(expr, i)
	valStart := i
	raw := strings.TrimSpace(expr[i:])
	if raw == "" {
		return fail(valStart+1, "want a value after %s", t.Op)
	}
	v, err := parseThresholdValue(kind, agg, raw)
	if err != nil {
		return fail(valStart+1, "%v", err)
	}
	t.Value = v
	return t, nil
}

func parseThresholdValue(kind MetricKind, agg, raw string) (float64, error) {
	if kind == Trend {
		if d, err := time.ParseDuration(raw); err == nil && strings.ContainsAny(raw, "nuµmsh") {
			return float64(d) / float64(time.Millisecond), nil
		}
	}
	if kind == Rate || (kind == Counter && agg == "rate") {
		if pct, ok := strings.CutSuffix(raw, "%"); ok && kind == Rate {
			v, err := strconv.ParseFloat(strings.TrimSpace(pct), 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return 0, fmt.Errorf("value %q: want a percentage such as 1%%", raw)
			}
			return v / 100, nil
		}
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		unit := ""
		if kind == Trend {
			unit = " (milliseconds) or a duration such as 500ms"
		}
		return 0, fmt.Errorf("value %q: want a number%s", raw, unit)
	}
	return v, nil
}

func aggregationAllowed(kind MetricKind, agg string) bool {
	for _, a := range aggregations[kind] {
		if a == agg || (a == "p(N)" && agg == "p") {
			return true
		}
	}
	return false
}

func skipSpace(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func metricNames(metrics map[string]MetricKind) []string {
	names := make([]string, 0, len(metrics))
	for n := range metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Holds reports whether an observed aggregate value satisfies the
// threshold.
func (t Threshold) Holds(observed float64) bool {
	switch t.Op {
	case OpLess:
		return observed < t.Value
	case OpLessEqual:
		return observed <= t.Value
	case OpGreater:
		return observed > t.Value
	case OpGreaterEqual:
		return observed >= t.Value
	case OpEqual:
		return observed == t.Value
	case OpNotEqual:
		return observed != t.Value
	}
	return false
}

// ParseThresholdFlag parses the one-liner form used by `relia load
// --threshold`: "metric{tags}:expr", e.g. "http_req_duration:p(99)<500".
func ParseThresholdFlag(s string) (Threshold, error) { return ParseThresholdFlagIn(Metrics, s) }

// ParseThresholdFlagIn is ParseThresholdFlag over another set of metrics
// (see ParseThresholdIn).
func ParseThresholdFlagIn(metrics map[string]MetricKind, s string) (Threshold, error) {
	// The metric reference may hold colons inside {...}; split after it.
	cut := strings.IndexByte(s, ':')
	if brace := strings.IndexByte(s, '{'); brace >= 0 && brace < cut {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return Threshold{}, fmt.Errorf("threshold %q: tag list is not closed with }", s)
		}
		cut = end + 1
		if cut >= len(s) || s[cut] != ':' {
			return Threshold{}, fmt.Errorf("threshold %q: want metric{tags}:expression", s)
		}
	}
	if cut < 0 {
		return Threshold{}, fmt.Errorf("threshold %q: want metric:expression, e.g. http_req_duration:p(99)<500", s)
	}
	return ParseThresholdIn(metrics, s[:cut], s[cut+1:])
}
