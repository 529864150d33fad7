package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/relia-dev/relia/clock"
)

// DefaultTriggerHeader is the request header that asks for a fault by name.
const DefaultTriggerHeader = "X-Relia-Fault"

// HTTPFault is a per-request fault: which requests it matches and what it
// does to them. In a proxy in HTTP mode it is the attributes of a toxic of
// type "http"; the gateway uses it through HTTPFilter.
type HTTPFault struct {
	// Methods matches the request method; empty matches every method.
	Methods []string `json:"methods,omitempty"`
	// Path matches the URL path with path.Match ("/api/*/items"); a
	// pattern ending in "/**" matches everything under its prefix. Empty
	// matches every path.
	Path string `json:"path,omitempty"`
	// Headers must all be present with these values (exact match).
	Headers map[string]string `json:"headers,omitempty"`
	// JSONField matches on a top-level member of the request's JSON body
	// ("model"): with neither JSONEquals nor JSONIn, on its presence. At
	// most MaxJSONMatchBody bytes of the body are read to decide; a
	// larger body, or one that is not a JSON object, does not match. The
	// body is forwarded whole, every byte as it came.
	JSONField string `json:"json_field,omitempty"`
	// JSONEquals matches when JSONField's value equals it: a string is
	// compared with the member's string value, a number or true/false
	// with its JSON text.
	JSONEquals *JSONScalar `json:"json_equals,omitempty"`
	// JSONIn matches when JSONField's value is one of these.
	JSONIn []JSONScalar `json:"json_in,omitempty"`
	// NthRequest faults only the N-th request the fault matches (1 is the
	// first), counted from when the fault was added.
	NthRequest int64 `json:"nth_request,omitempty"`
	// FirstRequests faults only the first N requests the fault matches.
	FirstRequests int64 `json:"first_requests,omitempty"`

	// Delay holds the request this many ms before anything else.
	Delay int64 `json:"delay,omitempty" unit:"milliseconds"`
	// AbortStatus answers with this status (say 503, 429 or 500) instead of
	// passing the request on.
	AbortStatus int `json:"abort_status,omitempty"`
	// RetryAfter, in seconds, is sent as Retry-After with an abort.
	RetryAfter int64 `json:"retry_after,omitempty" unit:"seconds"`
	// TruncateBody, when set, passes only this many bytes of the response
	// body and then breaks the connection, as a truncated response does.
	TruncateBody *int64 `json:"truncate_body,omitempty" unit:"bytes"`
	// CorruptRate is the share of response body bytes flipped, in [0, 1].
	CorruptRate float64 `json:"corrupt_rate,omitempty"`
	// SetHeaders are set on the response (header injection).
	SetHeaders map[string]string `json:"set_headers,omitempty"`
	// ErrorFormat answers an abort, and writes an error event, in a model
	// provider's shape: "openai" or "anthropic" (see providerError).
	ErrorFormat string `json:"error_format,omitempty"`
	// ErrorType overrides the provider's error type (rate_limit_error,
	// overloaded_error, ...) of an abort or an error event.
	ErrorType string `json:"error_type,omitempty"`

	// The stream faults act on the upstream's answer as it passes: the
	// head, and a Server-Sent Events body event by event (parsed by
	// ai/wire's bounded reader and written out again; comments and the
	// id and retry fields are dropped). Bodies of other types pass as
	// they come.

	// FirstByteDelay holds the upstream's answer this many ms before its
	// first byte is passed on: a slow time to first byte, while the
	// upstream works as usual.
	FirstByteDelay int64 `json:"first_byte_delay,omitempty" unit:"milliseconds"`
	// EventsPerSecond passes at most this many events a second.
	EventsPerSecond float64 `json:"events_per_second,omitempty" unit:"events a second"`
	// StallAfterEvents passes this many events and then nothing more,
	// holding the connection until the client leaves (or the fault ends,
	// which breaks it).
	StallAfterEvents *int64 `json:"stall_after_events,omitempty" unit:"events"`
	// TruncateAfterEvents passes this many events and then breaks the
	// connection, so the stream ends without its terminating event.
	TruncateAfterEvents *int64 `json:"truncate_after_events,omitempty" unit:"events"`
	// ErrorAfterEvents passes this many events, then sends an error event
	// in ErrorFormat's shape (OpenAI: a data event holding an "error"
	// object; Anthropic: "event: error") and ends the stream.
	ErrorAfterEvents *int64 `json:"error_after_events,omitempty" unit:"events"`
	// GRPCStatus ends a gRPC call with this status code instead of
	// passing it on: by name (UNAVAILABLE, DEADLINE_EXCEEDED,
	// RESOURCE_EXHAUSTED) or number. Path matches the method:
	// "/package.Service/Method".
	GRPCStatus string `json:"grpc_status,omitempty"`
	// GRPCMessage is the status message; default "fault injected".
	GRPCMessage string `json:"grpc_message,omitempty"`
	// GRPCPushback, in milliseconds, is sent as grpc-retry-pushback-ms
	// with the status: when a client's retry policy may try again
	// (negative: not at all).
	GRPCPushback *int64 `json:"grpc_retry_pushback_ms,omitempty" unit:"milliseconds"`
}

func (f *HTTPFault) validate() error {
	var errs []error
	for _, m := range f.Methods {
		if m == "" || strings.ToUpper(m) != m {
			errs = append(errs, fmt.Errorf("methods: %q must be an upper-case method", m))
		}
	}
	if f.Path != "" {
		if !strings.HasPrefix(f.Path, "/") {
			errs = append(errs, fmt.Errorf("path %q must start with /", f.Path))
		} else if _, err := path.Match(strings.TrimSuffix(f.Path, "/**"), "/"); err != nil {
			errs = append(errs, fmt.Errorf("path %q: %w", f.Path, err))
		}
	}
	if f.AbortStatus != 0 && (f.AbortStatus < 200 || f.AbortStatus > 599) {
		errs = append(errs, fmt.Errorf("abort_status must be within [200, 599], got %d", f.AbortStatus))
	}
	if f.RetryAfter != 0 && f.AbortStatus == 0 {
		errs = append(errs, errors.New("retry_after needs abort_status"))
	}
	if f.TruncateBody != nil {
		errs = append(errs, nonNegative("truncate_body", *f.TruncateBody))
	}
	if f.CorruptRate < 0 || f.CorruptRate > 1 || f.CorruptRate != f.CorruptRate {
		errs = append(errs, fmt.Errorf("corrupt_rate must be within [0, 1], got %v", f.CorruptRate))
	}
	for k, v := range f.SetHeaders {
		if !validHeaderName(k) || strings.ContainsAny(v, "\r\n\x00") {
			errs = append(errs, fmt.Errorf("set_headers: %q: %q is not a valid header", k, v))
		}
	}
	for k := range f.Headers {
		if !validHeaderName(k) {
			errs = append(errs, fmt.Errorf("headers: %q is not a valid header name", k))
		}
	}
	errs = append(errs, millis("delay", f.Delay), nonNegative("retry_after", f.RetryAfter), f.validateGRPC(),
		f.validateMatch(), f.validateStream())
	return errors.Join(errs...)
}

// validHeaderName reports whether name is an HTTP token (RFC 9110), the
// only thing a header name may be.
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func (f *HTTPFault) matches(r *http.Request) bool {
	if len(f.Methods) > 0 && !slices.Contains(f.Methods, r.Method) {
		return false
	}
	if f.Path != "" {
		if prefix, ok := strings.CutSuffix(f.Path, "/**"); ok {
			if r.URL.Path != prefix && !strings.HasPrefix(r.URL.Path, prefix+"/") {
				return false
			}
		} else if ok, _ := path.Match(f.Path, r.URL.Path); !ok {
			return false
		}
	}
	for k, v := range f.Headers {
		if r.Header.Get(k) != v {
			return false
		}
	}
	return true
}

// HTTPRule is a named HTTPFault applied to the share Probability of the
// requests it matches; 0.0001 is 0.01%.
type HTTPRule struct {
	Name        string
	Probability float64
	Fault       HTTPFault
}

// HTTPFilterOptions configure an HTTPFilter. The zero value is valid.
type HTTPFilterOptions struct {
	// Seed seeds the per-request decisions: the same seed and the same
	// sequence of requests give the same decisions.
	Seed uint64
	// Clock times delays; nil means the real clock.
	Clock clock.Clock
	// MaxTriggered caps the requests at once that a header may push into
	// a fault; 0 disables header-triggered faults.
	MaxTriggered int
	// TriggerHeader names the header that asks for a rule by name;
	// empty means DefaultTriggerHeader.
	TriggerHeader string
}

// HTTPFilter applies per-request faults in front of a handler: as the
// gateway's per-route fault filter, or in a fault proxy in HTTP mode.
type HTTPFilter struct {
	clock     clock.Clock
	seed      uint64
	maxTrig   int64
	trigger   string
	active    atomic.Int64 // header-triggered faults in progress
	mu        sync.Mutex   // serialises SetRules
	rules     atomic.Pointer[[]*ruleState]
	byName    map[string]*ruleState
	triggered atomic.Int64
	refused   atomic.Int64
}

// ruleState keeps a rule's request count across rule updates, so the
// decision sequence goes on where it was.
type ruleState struct {
	rule    HTTPRule
	key     uint64
	seen    *atomic.Uint64
	faulted *atomic.Int64
	// gone closes when the rule is removed, so a stream it stalled is
	// not held past the fault's end.
	gone chan struct{}
}

// NewHTTPFilter returns a filter applying rules; see SetRules.
func NewHTTPFilter(rules []HTTPRule, opts HTTPFilterOptions) (*HTTPFilter, error) {
	if opts.MaxTriggered < 0 {
		return nil, fmt.Errorf("max triggered faults must not be negative, got %d", opts.MaxTriggered)
	}
	f := &HTTPFilter{
		clock: clock.OrReal(opts.Clock), seed: opts.Seed, maxTrig: int64(opts.MaxTriggered),
		trigger: opts.TriggerHeader, byName: map[string]*ruleState{},
	}
	if f.trigger == "" {
		f.trigger = DefaultTriggerHeader
	}
	if err := f.SetRules(rules); err != nil {
		return nil, err
	}
	return f, nil
}

// SetRules replaces the rules; the first rule that matches and fires
// applies to a request. Names must be unique and non-empty.
func (f *HTTPFilter) SetRules(rules []HTTPRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	states := make([]*ruleState, 0, len(rules))
	names := map[string]*ruleState{}
	for i, r := range rules {
		if r.Name == "" {
			return fmt.Errorf("http fault %d: name is empty", i+1)
		}
		if _, dup := names[r.Name]; dup {
			return fmt.Errorf("http fault %q: name used twice", r.Name)
		}
		if err := checkToxicity(r.Name, r.Probability); err != nil {
			return fmt.Errorf("http fault %q: probability must be within [0, 1], got %v", r.Name, r.Probability)
		}
		if err := r.Fault.validate(); err != nil {
			return fmt.Errorf("http fault %q: %w", r.Name, err)
		}
		s := &ruleState{rule: r, key: streamKey(f.seed, "http", r.Name), seen: new(atomic.Uint64), faulted: new(atomic.Int64), gone: make(chan struct{})}
		if old, ok := f.byName[r.Name]; ok {
			s.seen, s.faulted, s.gone = old.seen, old.faulted, old.gone
		}
		states = append(states, s)
		names[r.Name] = s
	}
	for name, old := range f.byName {
		if _, kept := names[name]; !kept {
			close(old.gone)
		}
	}
	f.byName = names
	f.rules.Store(&states)
	return nil
}

// Faulted returns how many requests each rule has faulted.
func (f *HTTPFilter) Faulted() map[string]int64 {
	out := map[string]int64{}
	for _, s := range *f.rules.Load() {
		out[s.rule.Name] = s.faulted.Load()
	}
	return out
}

// unit turns a rule key and a request number into a uniform [0, 1) draw:
// a counter-based generator, so a decision depends on the seed and the
// request's number, not on which goroutine asked first.
func unit(key, n uint64) float64 {
	return float64(splitmix(key^splitmix(n))>>11) / (1 << 53)
}

// pick returns the rule to apply to r, and whether a header triggered it.
func (f *HTTPFilter) pick(r *http.Request) (*ruleState, uint64, bool) {
	rules := *f.rules.Load()
	if f.maxTrig > 0 {
		if name := r.Header.Get(f.trigger); name != "" {
			for _, s := range rules {
				if s.rule.Name == name {
					return s, s.seen.Add(1) - 1, true
				}
			}
		}
	}
	var body []byte // read once, for the first fault that matches on it
	peeked := false
	for _, s := range rules {
		ft := &s.rule.Fault
		if !ft.matches(r) {
			continue
		}
		if ft.JSONField != "" {
			if !peeked {
				body, peeked = peekBody(r), true
			}
			if !ft.matchesJSON(body) {
				continue
			}
		}
		n := s.seen.Add(1) - 1
		if ft.counted(n) && unit(s.key, n) < s.rule.Probability {
			return s, n, false
		}
	}
	return nil, 0, false
}

// Wrap returns next with the filter's faults in front of it.
func (f *HTTPFilter) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := f.Decide(w, r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		d.Serve(w, r, next)
	})
}

// Decision is the fault an HTTPFilter chose for one request: Decide takes
// it, Serve carries it out. The two steps let a caller that is not a
// net/http handler chain (the gateway) choose how to serve a request by
// the fault it will get.
type Decision struct {
	f         *HTTPFilter
	s         *ruleState
	n         uint64
	triggered bool
}

// Decide picks the fault for r: the first rule that matches and fires, or
// the one its trigger header names. It reports false when no fault applies;
// a triggered fault over the cap of MaxTriggered does not apply, and w's
// header says why. A Decision taken must be served, once.
func (f *HTTPFilter) Decide(w http.ResponseWriter, r *http.Request) (Decision, bool) {
	s, n, triggered := f.pick(r)
	if s == nil {
		return Decision{}, false
	}
	if triggered {
		if f.active.Add(1) > f.maxTrig {
			f.active.Add(-1)
			f.refused.Add(1)
			// Over the cap the request goes through untouched; the
			// header says why, so a test can tell.
			w.Header().Set(f.trigger+"-Refused", "cap of concurrent triggered faults reached")
			return Decision{}, false
		}
		f.triggered.Add(1)
	}
	s.faulted.Add(1)
	return Decision{f: f, s: s, n: n, triggered: triggered}, true
}

// Name is the name of the rule whose fault applies.
func (d Decision) Name() string { return d.s.rule.Name }

// Fault is the fault that applies; the caller must not change it.
func (d Decision) Fault() *HTTPFault { return &d.s.rule.Fault }

// Serve carries the fault out on the request: it answers in next's place
// (an abort), or passes the request to next, shaping next's answer on its
// way to w (the response faults). It may end by panicking with
// http.ErrAbortHandler, which means the client's connection (or HTTP/2
// stream) must be broken without ending the answer, as a net/http server
// does.
func (d Decision) Serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if d.triggered {
		defer d.f.active.Add(-1)
	}
	d.f.apply(w, r, next, d.s, d.n)
}

// ActsOnResponse reports whether the fault shapes the upstream's answer
// (the stream faults, a truncated or corrupted body) rather than only
// delaying the request or answering in the upstream's place.
func (f *HTTPFault) ActsOnResponse() bool {
	return f.streams() || f.TruncateBody != nil || f.CorruptRate != 0
}

func (f *HTTPFilter) apply(w http.ResponseWriter, r *http.Request, next http.Handler, s *ruleState, n uint64) {
	ft := &s.rule.Fault
	if ft.Delay > 0 {
		if err := clock.Sleep(r.Context(), f.clock, ms(ft.Delay)); err != nil {
			return // the client left
		}
	}
	for k, v := range ft.SetHeaders {
		w.Header().Set(k, v)
	}
	if ft.GRPCStatus != "" {
		ft.abortGRPC(w)
		return
	}
	if ft.AbortStatus != 0 {
		if ft.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(ft.RetryAfter, 10))
		}
		w.Header().Set("Content-Type", "application/json")
		if ft.ErrorFormat != "" {
			body := providerError(ft.ErrorFormat, ft.ErrorType, ft.AbortStatus, s.rule.Name)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(ft.AbortStatus)
			w.Write(body)
			return
		}
		w.WriteHeader(ft.AbortStatus)
		json.NewEncoder(w).Encode(map[string]string{"reason": "fault_injected", "fault": s.rule.Name})
		return
	}
	if ft.TruncateBody == nil && ft.CorruptRate == 0 && !ft.streams() {
		next.ServeHTTP(w, r)
		return
	}
	var out http.ResponseWriter = w
	var fw *bodyFaultWriter
	if ft.TruncateBody != nil || ft.CorruptRate != 0 {
		fw = &bodyFaultWriter{ResponseWriter: w, left: -1, rate: ft.CorruptRate, rng: newStream(s.key, n, Downstream)}
		if ft.TruncateBody != nil {
			fw.left = *ft.TruncateBody
		}
		out = fw
	}
	if ft.streams() {
		f.streamFault(out, r, next, s)
	} else {
		next.ServeHTTP(out, r)
	}
	if fw != nil && fw.cut {
		// Send what passed, then break the connection so the client sees
		// a truncated response, not a complete shorter one.
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
}

// bodyFaultWriter truncates and corrupts a response body.
type bodyFaultWriter struct {
	http.ResponseWriter
	left int64 // bytes still to pass; -1: no limit
	cut  bool
	rate float64
	rng  *rand.Rand
}

func (w *bodyFaultWriter) Write(p []byte) (int, error) {
	n := len(p)
	if w.left >= 0 {
		if int64(len(p)) > w.left {
			p = p[:w.left]
			w.cut = true
		}
		w.left -= int64(len(p))
	}
	if w.rate > 0 && len(p) > 0 {
		q := make([]byte, len(p))
		copy(q, p)
		for i := range q {
			if w.rng.Float64() < w.rate {
				q[i] ^= 0xFF
			}
		}
		p = q
	}
	if len(p) > 0 {
		if _, err := w.ResponseWriter.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *bodyFaultWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
