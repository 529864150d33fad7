package mock

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// FaultKind names what a Fault does to the requests it hits.
type FaultKind string

// The faults the simulator can inject.
const (
	// FaultStatus answers with an error status in the provider's own
	// error format: 429 (with Retry-After), 500, 503, 529 (Anthropic's
	// overloaded_error) or 400 (context length exceeded).
	FaultStatus FaultKind = "status"
	// FaultStall stops a stream after AfterTokens tokens and sends
	// nothing more until the client goes away; a non-streaming answer
	// never comes.
	FaultStall FaultKind = "stall"
	// FaultTruncate closes the connection after AfterTokens tokens,
	// without the stream's terminal event (or, not streaming, in the
	// middle of the body).
	FaultTruncate FaultKind = "truncate"
	// FaultErrorEvent sends the provider's error event after AfterTokens
	// tokens and ends the stream.
	FaultErrorEvent FaultKind = "error_event"
	// FaultSlowFirstToken adds Delay before the first token (before the
	// whole answer, not streaming).
	FaultSlowFirstToken FaultKind = "slow_first_token"
)

// Fault is one fault the simulator injects into the requests it matches,
// a Rate share of them (chosen by the seed, so a run repeats).
type Fault struct {
	// Kind is what the fault does.
	Kind FaultKind `json:"kind"`
	// Status is the status FaultStatus answers with (429, 500, 503, 529,
	// 400) and the kind of error event FaultErrorEvent sends (429 or 529
	// become rate-limit and overloaded errors, others a server error).
	Status int `json:"status,omitempty"`
	// RetryAfter, for a 429 or 529, is sent as the Retry-After header, in
	// whole seconds rounded up; zero sends none.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Rate is the share of matching requests hit, in [0, 1]; zero means
	// all of them.
	Rate float64 `json:"rate,omitempty"`
	// AfterTokens is how many tokens a stall, truncation or error event
	// lets through first.
	AfterTokens int `json:"after_tokens,omitempty"`
	// Delay is the extra wait of FaultSlowFirstToken.
	Delay time.Duration `json:"delay,omitempty"`
	// Model, when set, limits the fault to requests for this model.
	Model string `json:"model,omitempty"`
	// API, when set, limits the fault to one wire format: "openai",
	// "anthropic", "gemini" or "bedrock".
	API string `json:"api,omitempty"`
}

// Validate reports a fault whose settings do not fit its kind.
func (f Fault) Validate() error {
	switch f.Kind {
	case FaultStatus:
		switch f.Status {
		case 400, 429, 500, 502, 503, 529:
		default:
			return fmt.Errorf("status fault: status %d not one of 400, 429, 500, 502, 503, 529", f.Status)
		}
	case FaultErrorEvent:
		if f.Status == 0 {
			return nil
		}
		if f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("error_event fault: status %d not an error status", f.Status)
		}
	case FaultStall, FaultTruncate:
	case FaultSlowFirstToken:
		if f.Delay <= 0 {
			return errors.New("slow_first_token fault: delay must be positive")
		}
	default:
		return fmt.Errorf("unknown fault kind %q (want status, stall, truncate, error_event or slow_first_token)", f.Kind)
	}
	switch {
	case f.Rate < 0 || f.Rate > 1 || f.Rate != f.Rate:
		return fmt.Errorf("%s fault: rate %v not in [0, 1]", f.Kind, f.Rate)
	case f.AfterTokens < 0:
		return fmt.Errorf("%s fault: negative after_tokens", f.Kind)
	case f.RetryAfter < 0:
		return fmt.Errorf("%s fault: negative retry_after", f.Kind)
	}
	switch f.API {
	case "", APIOpenAI, APIAnthropic, APIGemini, APIBedrock:
	default:
		return fmt.Errorf("%s fault: unknown api %q (want openai, anthropic, gemini or bedrock)", f.Kind, f.API)
	}
	return nil
}

// ParseFault reads a fault as the command line writes it: a kind, or a
// status code standing for a status fault, then comma-separated
// key=value settings:
//
//	429,retry-after=2s,rate=0.5
//	529
//	stall,after=5
//	truncate,after=3,model=gpt-4o-mini
//	error_event,after=2,status=529
//	slow_first_token,delay=2s,api=anthropic
func ParseFault(s string) (Fault, error) {
	parts := strings.Split(strings.TrimSpace(s), ",")
	var f Fault
	head := strings.TrimSpace(parts[0])
	if code, err := strconv.Atoi(head); err == nil {
		f.Kind, f.Status = FaultStatus, code
	} else {
		f.Kind = FaultKind(strings.ReplaceAll(head, "-", "_"))
	}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok {
			return Fault{}, fmt.Errorf("fault %q: %q is not key=value", s, p)
		}
		var err error
		switch strings.ReplaceAll(k, "_", "-") {
		case "status":
			f.Status, err = strconv.Atoi(v)
		case "retry-after":
			f.RetryAfter, err = config.ParseDuration(v)
		case "rate":
			var r config.Ratio
			r, err = config.ParseRatio(v)
			f.Rate = float64(r)
		case "after":
			f.AfterTokens, err = strconv.Atoi(v)
		case "delay":
			f.Delay, err = config.ParseDuration(v)
		case "model":
			f.Model = v
		case "api":
			f.API = v
		default:
			return Fault{}, fmt.Errorf("fault %q: unknown setting %q (want status, retry-after, rate, after, delay, model or api)", s, k)
		}
		if err != nil {
			return Fault{}, fmt.Errorf("fault %q: %s: %w", s, k, err)
		}
	}
	if err := f.Validate(); err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	return f, nil
}

// matches reports whether f applies to a request.
func (f *Fault) matches(api, model string) bool {
	return (f.API == "" || f.API == api) && (f.Model == "" || f.Model == model)
}

// splitmix64 is a fast, well-mixed hash of a 64-bit value (Steele,
// Lea and Flood's SplitMix64 finaliser): the simulator's decisions are
// pure functions of the seed and a request's number.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit returns a number in [0, 1) from the seed and two indexes.
func unit(seed int64, a, b uint64) float64 {
	h := splitmix64(uint64(seed) ^ splitmix64(a^splitmix64(b)))
	return float64(h>>11) / (1 << 53)
}

// faultJSON is Fault with its durations written as "2s".
type faultJSON struct {
	Kind        FaultKind `json:"kind"`
	Status      int       `json:"status,omitempty"`
	RetryAfter  string    `json:"retry_after,omitempty"`
	Rate        float64   `json:"rate,omitempty"`
	AfterTokens int       `json:"after_tokens,omitempty"`
	Delay       string    `json:"delay,omitempty"`
	Model       string    `json:"model,omitempty"`
	API         string    `json:"api,omitempty"`
}

// MarshalJSON writes the fault with durations as "2s".
func (f Fault) MarshalJSON() ([]byte, error) {
	j := faultJSON{Kind: f.Kind, Status: f.Status, Rate: f.Rate, AfterTokens: f.AfterTokens, Model: f.Model, API: f.API}
	if f.RetryAfter > 0 {
		j.RetryAfter = config.FormatDuration(f.RetryAfter)
	}
	if f.Delay > 0 {
		j.Delay = config.FormatDuration(f.Delay)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads a fault with durations as "2s".
func (f *Fault) UnmarshalJSON(b []byte) error {
	var j faultJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return err
	}
	*f = Fault{Kind: j.Kind, Status: j.Status, Rate: j.Rate, AfterTokens: j.AfterTokens, Model: j.Model, API: j.API}
	var err error
	if j.RetryAfter != "" {
		if f.RetryAfter, err = config.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("retry_after: %w", err)
		}
	}
	if j.Delay != "" {
		if f.Delay, err = config.ParseDuration(j.Delay); err != nil {
			return fmt.Errorf("delay: %w", err)
		}
	}
	return nil
}
