package load

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/internal/config"
)

// Kind is the kind: of scenario documents.
const Kind = "Scenario"

// Scenario is the body of a `kind: Scenario` document: what requests to
// send, how many and how fast, and what must hold for the test to pass.
// Every field's comment is user documentation; Build turns a Scenario into
// a runnable Test after checking all of it.
type Scenario struct {
	// Metadata names the scenario.
	Metadata Metadata `yaml:"metadata"`
	// Spec is the test.
	Spec ScenarioSpec `yaml:"spec" config:"required"`

	// doc is the document the scenario was read from, so that errors found
	// after decoding point into it; zero for scenarios built in Go.
	doc config.Document
}

// Metadata names a scenario.
type Metadata struct {
	// Name labels the scenario in reports and result files.
	Name string `yaml:"name"`
	// Labels are free-form key/values carried into the result file.
	Labels map[string]string `yaml:"labels"`
}

// ScenarioSpec is what a scenario does.
type ScenarioSpec struct {
	// BaseURL is joined with each request's path: http://127.0.0.1:8080,
	// or grpc://127.0.0.1:50051 for gRPC calls.
	// A request whose path is a whole URL ignores it.
	BaseURL string `yaml:"baseURL"`
	// Headers are sent with every request; a request's own headers
	// override them. Values are templates.
	Headers map[string]string `yaml:"headers"`
	// Timeout bounds one request, from send to the last body byte; default
	// 30s. A request that runs out counts as a timeout.
	Timeout time.Duration `yaml:"timeout"`
	// HTTP is the protocol: "1.1" (default), "2" (HTTP/2 over TLS) or
	// "h2c" (HTTP/2 over cleartext with prior knowledge).
	HTTP string `yaml:"http"`
	// TLS configures certificate checks for https and grpcs URLs.
	TLS TLSSpec `yaml:"tls"`
	// GRPC configures gRPC calls: requests whose URL is
	// grpc://host:port/package.Service/Method (grpcs:// over TLS).
	GRPC GRPCSpec `yaml:"grpc"`
	// Vars are variables that templates use as {{name}}; setup's extract
	// adds more.
	Vars map[string]string `yaml:"vars"`
	// Data is a CSV file whose columns templates use as {{data.column}}.
	Data *DataSpec `yaml:"data"`
	// Setup is a request sent once before the load starts, typically to
	// log in and extract a token; if it fails, the test does not start.
	Setup *RequestSpec `yaml:"setup"`
	// Teardown is a request sent once after the load ends.
	Teardown *RequestSpec `yaml:"teardown"`
	// Requests are the requests of the load, picked by weight. Give
	// requests or journeys.
	Requests []RequestSpec `yaml:"requests"`
	// Journeys are what users do, step by step (log in, browse, add to
	// cart, pay), each user with its own cookies and variables: the open
	// model's rate is then users (journeys) per second, the closed
	// model's VUs walk journeys. Give requests or journeys.
	Journeys []JourneySpec `yaml:"journeys"`
	// CookieJar bounds each journey user's cookie jar.
	CookieJar CookieJarSpec `yaml:"cookieJar"`
	// Load is how much traffic to send and in which model.
	Load LoadSpec `yaml:"load" config:"required"`
	// Thresholds are pass/fail criteria in k6's syntax, by metric:
	// http_req_duration: ["p(99)<500"], "http_req_duration{name:login}":
	// [...], http_req_failed: ["rate<0.01"], checks: ["rate>0.99"]. Any
	// failed threshold makes the run fail (exit code 1).
	Thresholds map[string][]ThresholdSpec `yaml:"thresholds"`
	// Seed makes every random choice (request mix, template generators)
	// repeatable; 0 picks a fixed default, so runs repeat unless it is
	// changed.
	Seed uint64 `yaml:"seed"`
}

// TLSSpec configures TLS.
type TLSSpec struct {
	// CAFile is a PEM bundle of extra roots to trust, relative to the
	// scenario file.
	CAFile string `yaml:"caFile"`
	// Insecure skips certificate verification (test environments only).
	Insecure bool `yaml:"insecure"`
}

// DataSpec names a CSV data file.
type DataSpec struct {
	// File is the CSV file, with a header line naming the columns,
	// relative to the scenario file.
	File string `yaml:"file" config:"required"`
	// Order is "sequential" (default: every row once before any twice) or
	// "random".
	Order string `yaml:"order"`
}

// RequestSpec is one request of a scenario.
type RequestSpec struct {
	// Name labels the request in breakdowns and in thresholds
	// ("http_req_duration{name:login}"); default "METHOD path".
	Name string `yaml:"name"`
	// Weight is the request's share of the mix relative to the others'
	// weights (80 and 20 send 80% and 20%); default 1.
	Weight *float64 `yaml:"weight"`
	// Method is the HTTP method; default GET.
	Method string `yaml:"method"`
	// Path is joined with the base URL, or is a whole URL. It is a
	// template: /users/{{randInt 1 1000}}. A gRPC call's path is its
	// method, /package.Service/Method, under a grpc:// base URL.
	Path string `yaml:"path" config:"required"`
	// Headers are this request's headers (templates).
	Headers map[string]string `yaml:"headers"`
	// Body is the request body (a template); for a gRPC call, the request
	// message in protobuf JSON.
	Body string `yaml:"body"`
	// Think is the pause after the request in the closed model: fixed, or
	// uniform between Think and ThinkMax when ThinkMax is set.
	Think time.Duration `yaml:"think"`
	// ThinkMax is the upper bound of a random think time.
	ThinkMax time.Duration `yaml:"thinkMax"`
	// Checks are assertions on the response; a failed check counts as a
	// check failure, separately from transport errors.
	Checks []CheckSpec `yaml:"checks"`
	// ExpectedStatuses are the statuses that answer the request as
	// intended (k6's expectedStatuses), such as [201, 402] for a payment
	// that may be declined: the request then counts as a success, not a
	// status failure, in http_req_failed and in SLOs. Default: 200 to 399.
	ExpectedStatuses []int `yaml:"expectedStatuses"`
	// Extract sets variables from the JSON response: {token: $.data.token}.
	// Values extracted in setup are seen by every request.
	Extract map[string]string `yaml:"extract"`
	// Messages are, for a gRPC call of a client-streaming or bidirectional
	// method, the stream of request messages in protobuf JSON (templates),
	// sent in order; a unary or server-streaming call sends body.
	Messages []string `yaml:"messages"`
	// ExpectedCodes are, for a gRPC call, the status codes that answer it
	// as intended besides OK (NOT_FOUND, or 5): such calls count as
	// successes.
	ExpectedCodes []string `yaml:"expectedCodes"`
}

// CheckSpec is one assertion on a response; every field that is set must
// hold.
type CheckSpec struct {
	// Name labels the check in reports; default a description of it.
	Name string `yaml:"name"`
	// Status is the set of acceptable status codes.
	Status []int `yaml:"status"`
	// MaxLatency bounds the response time.
	MaxLatency time.Duration `yaml:"maxLatency"`
	// JSONPath must exist in the JSON body ($.items[0].id).
	JSONPath string `yaml:"jsonPath"`
	// Equals, with JSONPath, is the value the path must have (strings
	// without quotes, numbers as written).
	Equals *string `yaml:"equals"`
	// Contains must occur in the body.
	Contains *string `yaml:"contains"`
}

// LoadSpec is the load profile: give Rate (open model: arrivals per
// second, whatever the service does) or VUs (closed model: virtual users
// each sending its next request when the last one is done).
type LoadSpec struct {
	// Preset shapes the stages from Rate or VUs (the peak) and Duration:
	// "load" (ramp up, hold, ramp down), "stress" (ten steps up to the
	// peak; the report names the knee, the first step where thresholds
	// fail, and the run stops there), "spike" (a sudden jump from a tenth
	// of the peak to the peak and back), "soak" (a long hold at the peak)
	// or "breakpoint" (a linear ramp to the peak that stops as soon as a
	// threshold fails). Stages may not be given with a preset.
	Preset string `yaml:"preset"`
	// Rate is the arrival rate (requests per second) of the open model:
	// constant for Duration, or where Stages start from (0 to ramp up from
	// nothing), or a preset's peak. Give Rate or VUs, not both.
	Rate *float64 `yaml:"rate"`
	// VUs is the number of virtual users of the closed model: constant for
	// Duration, or where Stages start from, or a preset's peak.
	VUs *int `yaml:"vus"`
	// Duration is the length of a constant load or of a preset.
	Duration time.Duration `yaml:"duration"`
	// Stages move the rate (or the VUs) linearly to each target in turn.
	Stages []Stage `yaml:"stages"`
	// MaxInFlight caps the open model's requests in flight; an arrival
	// that finds the cap reached is dropped and counted, never queued.
	// Default: one second of the peak rate's requests, from 100 to 10,000.
	MaxInFlight int `yaml:"maxInFlight"`
	// GracefulStop is how long requests still running at the end may take
	// to finish; default 30s.
	GracefulStop time.Duration `yaml:"gracefulStop"`
	// LateAfter is how late (after its scheduled time) an open-model
	// request may start and still count as on time; default 10ms.
	LateAfter time.Duration `yaml:"lateAfter"`
	// MinOnTime is the generator's tolerance for itself: the share of the
	// open model's requests it must send within lateAfter of their
	// scheduled time. When it sends fewer on time (and at least 10 late),
	// the run is inconclusive (exit 5): the figures are reported, but the
	// lateness is relia's, so the service is not judged on them. Default
	// 90%; 0 turns the self-check off.
	MinOnTime OptionalRatio `yaml:"minOnTime"`
}

// Stretch makes the profile last d and keeps its shape: a constant load
// or a preset gets Duration d, stages are scaled in proportion (the last
// one takes the rounding), so that `relia load FILE --duration 10s` is a
// short run of the same scenario. A profile without a length (none yet,
// or stages of zero length) gets Duration d.
func (l *LoadSpec) Stretch(d time.Duration) {
	var total time.Duration
	for _, st := range l.Stages {
		total += st.Duration
	}
	if len(l.Stages) == 0 || total <= 0 {
		l.Duration = d
		return
	}
	stages := make([]Stage, len(l.Stages))
	left := d
	for i, st := range l.Stages {
		stages[i] = st
		if i == len(stages)-1 {
			stages[i].Duration = left
			break
		}
		stages[i].Duration = time.Duration(float64(st.Duration) / float64(total) * float64(d)).Round(time.Millisecond)
		left -= stages[i].Duration
	}
	l.Stages = stages
}

// OptionalRatio is a ratio (0.99 or "99%") that may be left out, told
// apart from an explicit 0.
type OptionalRatio struct {
	Ratio config.Ratio
	Set   bool
}

// UnmarshalYAML reads the ratio as config.Ratio does and marks it set.
func (o *OptionalRatio) UnmarshalYAML(n *yaml.Node) error {
	if err := o.Ratio.UnmarshalYAML(n); err != nil {
		return err
	}
	o.Set = true
	return nil
}

// JSONSchema describes the ratio for editors.
func (OptionalRatio) JSONSchema() map[string]any { return config.Ratio(0).JSONSchema() }

// Stage is one stage of a load profile.
type Stage struct {
	// Duration is the stage's length.
	Duration time.Duration `yaml:"duration" config:"required"`
	// Target is the rate (or VUs) reached at the end of the stage.
	Target float64 `yaml:"target"`
}

// ThresholdSpec is one threshold expression: a string ("p(99)<500") or a
// mapping with options.
type ThresholdSpec struct {
	// Threshold is the expression: an aggregation, a comparison and a
	// value, as in k6: "p(99)<500", "rate<0.01", "avg<=200ms".
	Threshold string `yaml:"threshold"`
	// AbortOnFail stops the run as soon as the threshold fails.
	AbortOnFail bool `yaml:"abortOnFail"`
	// DelayAbortEval is how long after the start abortOnFail waits before
	// it judges, so a warm-up does not abort the run.
	DelayAbortEval time.Duration `yaml:"delayAbortEval"`
	// Window makes the threshold hold over every sliding window of this
	// length (stepping by one second), not only over the whole run.
	Window time.Duration `yaml:"window"`

	node *yaml.Node
}

// UnmarshalYAML reads a threshold from a string or a mapping.
func (t *ThresholdSpec) UnmarshalYAML(n *yaml.Node) error {
	t.node = n
	if n.Kind == yaml.ScalarNode {
		if n.ShortTag() != "!!str" {
			return fmt.Errorf("expected a threshold expression such as \"p(99)<500\", got %s", n.Value)
		}
		t.Threshold = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return errors.New("expected a threshold expression or a mapping with threshold:, abortOnFail:, delayAbortEval:, window:")
	}
	// The options are decoded by the strict loader through a plain struct
	// type, so unknown options are errors with a position.
	type plain struct {
		Threshold      string        `yaml:"threshold" config:"required"`
		AbortOnFail    bool          `yaml:"abortOnFail"`
		DelayAbortEval time.Duration `yaml:"delayAbortEval"`
		Window         time.Duration `yaml:"window"`
	}
	var p plain
	if err := (config.Document{File: "", Node: n}).Decode(&p); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return fmt.Errorf("%s: %s", ce.Field, ce.Msg)
		}
		return err
	}
	*t = ThresholdSpec{Threshold: p.Threshold, AbortOnFail: p.AbortOnFail, DelayAbortEval: p.DelayAbortEval, Window: p.Window, node: n}
	return nil
}

// JSONSchema describes a threshold for editors.
func (ThresholdSpec) JSONSchema() map[string]any {
	return map[string]any{
		"description": `a k6 threshold expression ("p(99)<500", "rate<0.01") or a mapping with options`,
		"oneOf": []any{
			map[string]any{"type": "string"},
			map[string]any{
				"type":                 "object",
				"additionalProperties": false,
				"required":             []string{"threshold"},
				"properties": map[string]any{
					"threshold":      map[string]any{"type": "string", "description": `the expression, as in k6: "p(99)<500", "rate<0.01", "avg<=200ms"`},
					"abortOnFail":    map[string]any{"type": "boolean", "description": "stop the run as soon as the threshold fails"},
					"delayAbortEval": durationSchema(),
					"window":         durationSchema(),
				},
			},
		},
	}
}

// durationSchema is config's schema for durations, which it does not
// export; kept in step by TestJSONSchema's golden file.
func durationSchema() map[string]any {
	return map[string]any{
		"type":        "string",
		"description": "a duration such as 250ms, 1h30m, 7d or 4w",
		"pattern":     `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w|y))+)$`,
	}
}

// JSONSchema returns the JSON Schema of scenario documents, published as
// docs/schema/scenario.json for editors.
func JSONSchema() ([]byte, error) { return config.Schema(Kind, Scenario{}) }

// ReadScenarios reads the `kind: Scenario` documents of a file; documents
// of other kinds are skipped. Decoding errors name file:line:col.
func ReadScenarios(path string) ([]*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading scenario: %w", err)
	}
	return ParseScenarios(path, data)
}

// ParseScenarios decodes the `kind: Scenario` documents in data; name is
// the file name, for errors and for resolving relative data and CA files.
func ParseScenarios(name string, data []byte) ([]*Scenario, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var out []*Scenario
	var errs []error
	for _, d := range docs {
		if d.Kind != Kind {
			continue
		}
		s := &Scenario{doc: d}
		if err := d.Decode(s); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no document of kind: %s", name, Kind)
	}
	return out, nil
}

// LoadFile reads the one scenario in a file and builds it.
func LoadFile(path string) (*Test, error) {
	scs, err := ReadScenarios(path)
	if err != nil {
		return nil, err
	}
	if len(scs) > 1 {
		return nil, fmt.Errorf("%s: %d scenarios in one file; relia load runs one", path, len(scs))
	}
	return scs[0].Build()
}

// errorf reports a problem with the field at path, at its position in the
// scenario's file when it was read from one.
func (s *Scenario) errorf(path, format string, args ...any) error {
	if s.doc.Node == nil {
		return fmt.Errorf("scenario: %s: %s", path, fmt.Sprintf(format, args...))
	}
	return s.doc.Errorf(path, format, args...)
}

// relPath resolves a file named in the scenario against its file's
// directory.
func (s *Scenario) relPath(p string) string {
	if p == "" || filepath.IsAbs(p) || s.doc.File == "" {
		return p
	}
	return filepath.Join(filepath.Dir(s.doc.File), p)
}
