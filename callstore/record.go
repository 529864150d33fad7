package callstore

import (
	"time"
)

// Record is one call the gateway answered: proxied, rejected, served from
// its cache or from a fallback. The gateway and the AI gateway fill one
// per request and hand it to a Recorder; stores keep it, queries return
// it and the analysis reads its rollups.
//
// A Record never holds a secret: KeyID names the consumer's key, never
// the key, and headers and bodies are present only for routes that opt
// in (Capture), after redaction.
type Record struct {
	// Seq is the record's place in its store, assigned when it is
	// written; zero in records not yet stored.
	Seq int64 `json:"seq,omitempty"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// RequestID is the gateway's X-Request-Id (the client's when it sent
	// one).
	RequestID string `json:"request_id"`
	// TraceID is the W3C trace id in lower-case hex, empty without one.
	TraceID string `json:"trace_id,omitempty"`
	// Gateway names the gateway instance that answered, so that several
	// gateways sharing one store can be told apart.
	Gateway string `json:"gateway,omitempty"`
	// Route is the route's name; empty when no route matched.
	Route string `json:"route"`
	// API and APIVersion name the managed API the route belongs to
	// (kind: API), empty when it belongs to none.
	API        string `json:"api,omitempty"`
	APIVersion string `json:"api_version,omitempty"`
	// Tenant is the authenticated tenant; empty for anonymous calls.
	Tenant string `json:"tenant,omitempty"`
	// KeyID is the consumer's key id (an API key's id, a JWT's subject),
	// never the credential itself.
	KeyID string `json:"key_id,omitempty"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// PathTemplate is the route's path pattern ("/orders/{id}"), Path the
	// request's path without the query.
	PathTemplate string `json:"path_template,omitempty"`
	Path         string `json:"path"`
	// Status is the status the client got; 0 when it got none (the
	// connection broke first).
	Status int `json:"status"`
	// Outcome is the call's outcome class as outcome.Class names it
	// ("ok", "status", "timeout", ...).
	Outcome string `json:"outcome"`
	// Reason is the rejection or failure reason the client was told
	// ("rate_limited", "subscription_pending", "upstream_timeout"), empty
	// for a call that went through.
	Reason string `json:"reason,omitempty"`
	// Latency is the whole call, from the request's arrival to the last
	// byte of the response; Upstream the part spent waiting on targets
	// (all attempts); TTFB the time to the response's first byte (for AI
	// calls the first token). The gateway's own share is Latency minus
	// Upstream (GatewayLatency).
	Latency  time.Duration `json:"-"`
	Upstream time.Duration `json:"-"`
	TTFB     time.Duration `json:"-"`
	// Target is the upstream target that gave the answer ("10.0.0.7:8080",
	// an AI provider's name); empty when none was asked.
	Target string `json:"target,omitempty"`
	// Attempts counts the upstream attempts (retries and hedges included).
	Attempts int `json:"attempts"`
	// BytesIn and BytesOut are the request and response body sizes.
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
	// Model and Provider are set for AI calls: the model the client asked
	// for and the provider that served it.
	Model    string `json:"model,omitempty"`
	Provider string `json:"provider,omitempty"`
	// InputTokens and OutputTokens are an AI call's usage; Cost its price
	// in USD from the model catalog.
	InputTokens  int64   `json:"input_tokens,omitempty"`
	OutputTokens int64   `json:"output_tokens,omitempty"`
	Cost         float64 `json:"cost_usd,omitempty"`
	// Steps is the call's story in order: each upstream attempt, hedge,
	// fallback or cache answer, with what came of it.
	Steps []Step `json:"steps,omitempty"`
	// RequestHeaders, ResponseHeaders, RequestBody and ResponseBody are
	// kept only for routes that opt in (Capture), capped and redacted.
	RequestHeaders  []Header `json:"request_headers,omitempty"`
	ResponseHeaders []Header `json:"response_headers,omitempty"`
	RequestBody     string   `json:"request_body,omitempty"`
	ResponseBody    string   `json:"response_body,omitempty"`
}

// Step is one part of a call's story.
type Step struct {
	// Kind is what the step was: StepAttempt, StepHedge, StepFallback or
	// StepCache.
	Kind string `json:"kind"`
	// Target is the upstream target or provider the step went to.
	Target string `json:"target,omitempty"`
	// Status is the status the step got; 0 for none.
	Status int `json:"status,omitempty"`
	// Outcome is the step's outcome class; Reason why it failed or why
	// the next step was taken ("upstream_5xx", "breaker_open").
	Outcome string `json:"outcome,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Latency is the step's own duration.
	Latency time.Duration `json:"-"`
}

// The kinds of Step.
const (
	StepAttempt  = "attempt"
	StepHedge    = "hedge"
	StepFallback = "fallback"
	StepCache    = "cache"
)

// Header is one kept header field.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// GatewayLatency is the part of the call's latency spent in the gateway
// itself: Latency minus Upstream, never negative.
func (r *Record) GatewayLatency() time.Duration { return max(r.Latency-r.Upstream, 0) }

// Failed reports whether the call failed: any outcome but "ok", the rule
// outcome.Class.Failed applies, so that the error rates the analysis
// shows are the SLO engine's.
func (r *Record) Failed() bool { return r.Outcome != "ok" }

// Rejected reports whether the gateway itself refused the call (a
// policy, access control, a lifecycle state) rather than a target
// answering it.
func (r *Record) Rejected() bool { return r.Reason != "" && r.Attempts == 0 }
