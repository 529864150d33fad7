package experiment

import (
	"time"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/slo"
)

// Kind is the kind: of experiment documents.
const Kind = "Experiment"

// Defaults of the settings an experiment may leave out.
const (
	// DefaultAbortWindow is the trailing window an abort condition is
	// judged over.
	DefaultAbortWindow = 10 * time.Second
	// DefaultAbortMinEvents is the least number of events a burn-rate
	// abort window must hold before it can abort the run, so that one
	// failure among the first few requests does not end it.
	DefaultAbortMinEvents = 10
	// DefaultRecoveryWindow is the window whose SLI must meet the
	// objective for a fault to count as recovered from.
	DefaultRecoveryWindow = 5 * time.Second
	// DefaultRecoveryBound is the recovery time the scorecard accepts.
	DefaultRecoveryBound = 30 * time.Second
	// DefaultFaultLease is the lease of every fault the runner starts: a
	// runner that dies leaves nothing injected for longer.
	DefaultFaultLease = 15 * time.Second
	// DefaultHealthTimeout bounds the wait for a started service's health
	// check to pass.
	DefaultHealthTimeout = 30 * time.Second
	// DefaultHealthPath is the path a started service's health check asks.
	DefaultHealthPath = "/healthz"
)

// Experiment is the body of a `kind: Experiment` document: a target,
// the SLOs that form the steady-state hypothesis, and phases of load with
// the faults active in each. Every field's comment is user
// documentation.
type Experiment struct {
	// Metadata names the experiment.
	Metadata Metadata `yaml:"metadata" config:"required" json:"metadata,omitempty"`
	// Spec is what the experiment does.
	Spec Spec `yaml:"spec" config:"required" json:"spec,omitempty"`

	// doc is the document the experiment was read from; validation
	// errors point into it.
	doc config.Document
}

// Metadata names an experiment.
type Metadata struct {
	// Name identifies the experiment in the journal and the report:
	// letters, digits, '-', '_' and '.'.
	Name string `yaml:"name" config:"required" json:"name,omitempty"`
	// Labels are copied into the journal.
	Labels map[string]string `yaml:"labels" json:"labels,omitempty"`
}

// Spec is what an experiment does.
type Spec struct {
	// Description says what the experiment proves.
	Description string `yaml:"description" json:"description,omitempty"`
	// Seed seeds every random choice of the run (which replica a process
	// fault hits, the fault proxy's coin flips, the load's jitter). Left
	// out, the run picks one and records it in the journal; `relia run
	// --seed` replays a run's decisions.
	Seed *uint64 `yaml:"seed" json:"seed,omitempty"`
	// Target is the system under test.
	Target Target `yaml:"target" config:"required" json:"target,omitempty"`
	// Proxies are the fault proxies the run creates in front of the
	// target's dependencies; toxic faults name one.
	Proxies []Proxy `yaml:"proxies" json:"proxies,omitempty"`
	// FaultServer is the control API (http://host:port) of a fault server
	// that already runs, whose proxies toxic faults may also name. Left
	// out, the run starts one in-process.
	FaultServer string `yaml:"faultServer" json:"faultServer,omitempty"`
	// FaultLease is the lease of every fault: the runner renews it while
	// the fault should last, so a runner that dies, even by SIGKILL,
	// leaves nothing injected for longer. Default 15s.
	FaultLease time.Duration `yaml:"faultLease" json:"faultLease_ns,omitempty"`
	// SLOs form the steady-state hypothesis: the verdict judges each over
	// the run and over every phase.
	SLOs []SLORef `yaml:"slos" config:"required" json:"slos,omitempty"`
	// Scenario is the default `kind: Scenario` reference of every phase's
	// load: "scenario.yaml", or "scenario.yaml#name" for one of several
	// scenarios in a file. Paths are relative to the experiment file.
	Scenario string `yaml:"scenario" json:"scenario,omitempty"`
	// Phases run in order, each for its duration.
	Phases []Phase `yaml:"phases" config:"required" json:"phases,omitempty"`
	// Baseline names the phase every other phase is compared with; default:
	// the first phase without faults.
	Baseline string `yaml:"baseline" json:"baseline,omitempty"`
	// Abort conditions end the run early, every fault rolled back at once,
	// with exit code 3.
	Abort []AbortCondition `yaml:"abort" json:"abort,omitempty"`
	// Thresholds must hold over the whole run, written as in k6:
	// {http_req_duration: ["p(99)<500"], http_req_failed: ["rate<0.01"]}.
	Thresholds map[string][]string `yaml:"thresholds" json:"thresholds,omitempty"`
	// Recovery configures how recovery after each fault is measured and
	// what the scorecard accepts.
	Recovery Recovery `yaml:"recovery" json:"recovery,omitempty"`
	// Generator is how punctual the load generator must be for the run to
	// be judged; it replaces every phase scenario's own lateAfter and
	// minOnTime.
	Generator Generator `yaml:"generator" json:"generator,omitempty"`
}

// Target is the system under test: a URL, services the run starts, or
// both (the load goes to the URL when given, otherwise to the first
// service).
type Target struct {
	// URL is where the load goes: http://127.0.0.1:8080.
	URL string `yaml:"url" json:"url,omitempty"`
	// Services are started by the run before the first phase and stopped
	// after the last; process faults name them.
	Services []Service `yaml:"services" json:"services,omitempty"`
}

// Service is one service the run starts: relia's embedded demo shop, or
// a command with replicas and a health check.
type Service struct {
	// Name identifies the service; process faults name it.
	Name string `yaml:"name" config:"required" json:"name,omitempty"`
	// Shop starts relia's embedded demo shop behind the relia gateway
	// (catalog, users, payments, recommendations). Process faults may
	// name its services: catalog, users, payments, recommendations.
	Shop *Shop `yaml:"shop" json:"shop,omitempty"`
	// AI starts relia's embedded AI stack: an assistant service (POST
	// /ask, an OpenAI chat request whose "user" names the tenant: acme,
	// globex or initech) calling relia's AI gateway, with two simulated
	// providers behind it (alpha, the primary, and beta); provider
	// faults name them.
	AI *AIStack `yaml:"ai" json:"ai,omitempty"`
	// Command is the program and its arguments; "{{port}}" and
	// "{{replica}}" in an argument are replaced per replica.
	Command []string `yaml:"command" json:"command,omitempty"`
	// Env is added to the command's environment, with PORT and
	// RELIA_REPLICA set per replica.
	Env map[string]string `yaml:"env" json:"env,omitempty"`
	// Replicas is how many copies of the command run; default 1.
	Replicas int `yaml:"replicas" json:"replicas,omitempty"`
	// Port is the first replica's port; replica i listens on Port+i.
	Port int `yaml:"port" json:"port,omitempty"`
	// Health is the check each replica must pass before the run starts.
	Health Health `yaml:"health" json:"health,omitempty"`
	// Autoscale, for a command, puts the relia gateway in front of its
	// replicas and scales them between minReplicas and maxReplicas by the
	// Kubernetes HPA's rules on the gateway's request rate (see
	// Autoscale); replicas is then ignored.
	Autoscale *Autoscale `yaml:"autoscale" json:"autoscale,omitempty"`
}

// Shop configures the embedded demo shop.
type Shop struct {
	// DisableResilience turns off the gateway's retries, breakers and
	// fallbacks, to show what they are worth.
	DisableResilience bool `yaml:"disableResilience" json:"disableResilience,omitempty"`
	// Replicas is how many replicas each shop service runs; default 2.
	Replicas int `yaml:"replicas" json:"replicas,omitempty"`
}

// AIStack configures the embedded AI stack.
type AIStack struct {
	// DisableResilience leaves the gateway's route with alpha alone, one
	// attempt, long timeouts and no breaker, to show what failover, idle
	// timeouts and breakers are worth.
	DisableResilience bool `yaml:"disableResilience" json:"disableResilience,omitempty"`
	// QuotaTokens is the token quota a minute of the tenant initech;
	// default 600.
	QuotaTokens int64 `yaml:"quotaTokens" json:"quotaTokens,omitempty"`
}

// Health is a started service's health check: an HTTP GET that must
// answer 2xx.
type Health struct {
	// Path is asked on every replica's port; default /healthz.
	Path string `yaml:"path" json:"path,omitempty"`
	// Timeout bounds the wait for every replica to pass; default 30s.
	Timeout time.Duration `yaml:"timeout" json:"timeout_ns,omitempty"`
}

// Proxy is a fault proxy the run creates: it listens on Listen and
// relays to Upstream, and toxic faults act on what passes through.
type Proxy struct {
	// Name identifies the proxy; toxic faults name it.
	Name string `yaml:"name" config:"required" json:"name,omitempty"`
	// Listen is host:port; default a free loopback port.
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// Upstream is host:port of what the proxy relays to.
	Upstream string `yaml:"upstream" config:"required" json:"upstream,omitempty"`
	// Mode is tcp (the default) or http; toxics of type http need http.
	Mode string `yaml:"mode" json:"mode,omitempty"`
}

// SLORef names SLOs: every SLO of a file, one SLO of a file by id, an
// SLO of the experiment's own file by id, or an SLO written inline.
type SLORef struct {
	// File is a file of SLO documents (relia, OpenSLO or Sloth), relative
	// to the experiment file.
	File string `yaml:"file" json:"file,omitempty"`
	// ID picks one SLO, "<service>-<name>": from File when given,
	// otherwise from the documents of kind SLO in the experiment's own
	// file.
	ID string `yaml:"id" json:"id,omitempty"`
	// Inline is an SLO written in place: its metadata and spec, as in a
	// `kind: SLO` document.
	Inline *slo.SLO `yaml:"inline" json:"-"`
	// Measure is what the SLO counts in a run: requests (the default:
	// one event per request, as every SLO), llm_time_to_first_token
	// (one event per stream of an llm load that had a first token, its
	// latency the time to it; for a latency SLI) or llm_goodput (one
	// event per request of an llm load, good when it met the load's
	// goodput objectives; for an availability SLI, whose good classes it
	// ignores).
	Measure string `yaml:"measure" json:"measure,omitempty"`
}

// Phase is a span of the run with its own load and faults.
type Phase struct {
	// Name identifies the phase: baseline, spike, payments-degraded...
	Name string `yaml:"name" config:"required" json:"name,omitempty"`
	// Duration is how long the phase runs.
	Duration time.Duration `yaml:"duration" config:"required" json:"duration_ns,omitempty"`
	// Load is the phase's traffic.
	Load Load `yaml:"load" json:"load,omitempty"`
	// Faults are active during the phase, each from its start offset for
	// its duration.
	Faults []Fault `yaml:"faults" json:"faults,omitempty"`
	// Thresholds must hold over the phase, written as in k6.
	Thresholds map[string][]string `yaml:"thresholds" json:"thresholds,omitempty"`
}

// Load is a phase's traffic: the requests of a `kind: Scenario` and a
// profile that overrides the scenario's own. The load generator
// validates the profile against the scenario when the run starts.
type Load struct {
	// Scenario is the `kind: Scenario` reference, "file.yaml" or
	// "file.yaml#name"; default the experiment's Scenario.
	Scenario string `yaml:"scenario" json:"scenario,omitempty"`
	// Rate is the arrival rate in requests per second (open model), or
	// the start rate that Stages move from.
	Rate float64 `yaml:"rate" json:"rate,omitempty"`
	// Stages move the rate (or, with VUs, the number of virtual users)
	// linearly to each stage's target over its duration.
	Stages []Stage `yaml:"stages" json:"stages,omitempty"`
	// VUs is the number of virtual users (closed model), instead of Rate.
	VUs int `yaml:"vus" json:"vus,omitempty"`
	// MaxInFlight caps requests in flight in the open model; arrivals
	// beyond it are dropped and counted.
	MaxInFlight int `yaml:"maxInFlight" json:"maxInFlight,omitempty"`
	// LLM makes the phase's requests model streams, sent and measured as
	// relia load llm does (time to first token, tokens, goodput), instead
	// of a scenario's.
	LLM *LLMLoad `yaml:"llm" json:"llm,omitempty"`
}

// LLMLoad is a phase's streaming model traffic.
type LLMLoad struct {
	// Path is where the streams go on the target; default
	// /v1/chat/completions.
	Path string `yaml:"path" json:"path,omitempty"`
	// API is the streams' format: openai, anthropic, gemini or sse;
	// default from the path, as relia load llm decides it.
	API string `yaml:"api" json:"api,omitempty"`
	// Model is the model every request names.
	Model string `yaml:"model" json:"model,omitempty"`
	// MaxTokens caps each answer; default 128.
	MaxTokens int `yaml:"maxTokens" json:"maxTokens,omitempty"`
	// InputTokens is the mean length of the synthetic prompts; default
	// 32.
	InputTokens int `yaml:"inputTokens" json:"inputTokens,omitempty"`
	// Users are put, in turn, in the requests' "user" field (OpenAI's
	// end-user id, the tenant of relia's demo assistant); empty sends
	// none.
	Users []string `yaml:"users" json:"users,omitempty"`
	// Headers are added to every request.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// IdleTimeout ends a stream silent for this long as stalled; default
	// 30s.
	IdleTimeout time.Duration `yaml:"idleTimeout" json:"idleTimeout_ns,omitempty"`
	// Goodput is what a request must meet to count as good (the
	// llm_goodput measure).
	Goodput Goodput `yaml:"goodput" json:"goodput,omitempty"`
	// ExpectedStatuses are refusals the service gives by design (a
	// tenant over its quota: 429): they count as answered (class ok) in
	// the requests measure and are left out of llm_goodput, neither good
	// nor bad.
	ExpectedStatuses []int `yaml:"expectedStatuses" json:"expectedStatuses,omitempty"`
}

// Goodput are the per-request objectives of goodput; a zero field is not
// checked. A request is good when its stream ended well and it met every
// objective set.
type Goodput struct {
	// TTFT bounds the time to first token.
	TTFT time.Duration `yaml:"ttft" json:"ttft_ns,omitempty"`
	// TPOT bounds the time per output token.
	TPOT time.Duration `yaml:"tpot" json:"tpot_ns,omitempty"`
	// E2E bounds the request's whole latency.
	E2E time.Duration `yaml:"e2e" json:"e2e_ns,omitempty"`
}

// Stage is one stage of a load profile.
type Stage struct {
	// Duration is how long the stage moves towards its target.
	Duration time.Duration `yaml:"duration" config:"required" json:"duration_ns,omitempty"`
	// Target is the rate (or VUs) at the end of the stage.
	Target float64 `yaml:"target" json:"target,omitempty"`
}

// Fault is one fault active during a phase: a toxic on a fault proxy, a
// fault in the gateway's per-route filter, or a process fault on one
// replica of a service. Give exactly one of toxic, gateway and process.
type Fault struct {
	// Name identifies the fault in the journal and the report; unique in
	// the experiment.
	Name string `yaml:"name" config:"required" json:"name,omitempty"`
	// Start is the offset in the phase at which the fault starts; default
	// 0, the phase's start.
	Start time.Duration `yaml:"start" json:"start_ns,omitempty"`
	// Duration is how long the fault lasts; default to the phase's end.
	Duration time.Duration `yaml:"duration" json:"duration_ns,omitempty"`
	// Toxic is a toxic on one of the fault proxies.
	Toxic *ToxicFault `yaml:"toxic" json:"toxic,omitempty"`
	// Gateway is a fault in the gateway's fault filter on one route.
	Gateway *GatewayFault `yaml:"gateway" json:"gateway,omitempty"`
	// Process acts on one replica of a service.
	Process *ProcessFault `yaml:"process" json:"process,omitempty"`
	// Provider makes a simulated model provider of the AI stack
	// misbehave.
	Provider *ProviderFault `yaml:"provider" json:"provider,omitempty"`
}

// ProviderFault makes a provider of the embedded AI stack misbehave, a
// share of its requests chosen from the run's seed.
type ProviderFault struct {
	// Provider names the provider: alpha or beta.
	Provider string `yaml:"provider" config:"required" json:"provider,omitempty"`
	// Kind is what it does: status (an error answer in the provider's
	// format), stall (a stream stops after afterTokens tokens), truncate,
	// error_event or slow_first_token.
	Kind string `yaml:"kind" config:"required" json:"kind,omitempty"`
	// Status is a status fault's status: 429, 500, 502, 503, 529 or 400.
	Status int `yaml:"status" json:"status,omitempty"`
	// RetryAfter is sent with a 429 or 529.
	RetryAfter time.Duration `yaml:"retryAfter" json:"retryAfter_ns,omitempty"`
	// Rate is the share of requests hit; default 100%.
	Rate config.Ratio `yaml:"rate" json:"rate,omitempty"`
	// AfterTokens is how many tokens a stall, truncation or error event
	// lets through first.
	AfterTokens int `yaml:"afterTokens" json:"afterTokens,omitempty"`
	// Delay is slow_first_token's extra wait.
	Delay time.Duration `yaml:"delay" json:"delay_ns,omitempty"`
}

// ToxicFault is a toxic on a fault proxy, in Toxiproxy's terms.
type ToxicFault struct {
	// Proxy names the proxy: one of spec.proxies, or one the fault server
	// at spec.faultServer has.
	Proxy string `yaml:"proxy" config:"required" json:"proxy,omitempty"`
	// Type is the toxic type: latency, bandwidth, slow_close, timeout,
	// reset_peer, slicer, limit_data, partition, http, chunk_loss.
	Type string `yaml:"type" config:"required" json:"type,omitempty"`
	// Stream is downstream (the default) or upstream.
	Stream string `yaml:"stream" json:"stream,omitempty"`
	// Toxicity is the share of connections the toxic acts on; default
	// 100% (a toxic on no connection would be no fault).
	Toxicity config.Ratio `yaml:"toxicity" json:"toxicity,omitempty"`
	// Attributes are the type's attributes, as in Toxiproxy:
	// {latency: 300, jitter: 50} (milliseconds).
	Attributes map[string]any `yaml:"attributes" json:"attributes,omitempty"`
}

// GatewayFault is a fault in the gateway's fault filter on one route.
type GatewayFault struct {
	// Route names the gateway route.
	Route string `yaml:"route" config:"required" json:"route,omitempty"`
	// Delay holds each faulted request this long first.
	Delay time.Duration `yaml:"delay" json:"delay_ns,omitempty"`
	// AbortStatus answers faulted requests with this status instead of
	// proxying them.
	AbortStatus int `yaml:"abortStatus" json:"abortStatus,omitempty"`
	// Percentage is the share of the route's requests faulted; default
	// 100%.
	Percentage config.Ratio `yaml:"percentage" json:"percentage,omitempty"`
	// Headers the request must carry for the fault to apply.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`
	// JSONField matches on a top-level member of the request's JSON body
	// ("model"); with neither jsonEquals nor jsonIn, on its presence.
	JSONField string `yaml:"jsonField" json:"json_field,omitempty"`
	// JSONEquals matches when jsonField's value is this.
	JSONEquals string `yaml:"jsonEquals" json:"json_equals,omitempty"`
	// JSONIn matches when jsonField's value is one of these.
	JSONIn []string `yaml:"jsonIn" json:"json_in,omitempty"`
	// NthRequest faults only the N-th matching request of the fault's
	// window (1 is the first).
	NthRequest int64 `yaml:"nthRequest" json:"nth_request,omitempty"`
	// FirstRequests faults only the first N matching requests of the
	// fault's window.
	FirstRequests int64 `yaml:"firstRequests" json:"first_requests,omitempty"`
	// RetryAfter is sent as Retry-After with an abort.
	RetryAfter time.Duration `yaml:"retryAfter" json:"retry_after_ns,omitempty"`
	// ErrorFormat answers an abort, and writes errorAfterEvents' event,
	// in a model provider's shape: openai or anthropic.
	ErrorFormat string `yaml:"errorFormat" json:"error_format,omitempty"`
	// ErrorType replaces the provider's error type the status implies.
	ErrorType string `yaml:"errorType" json:"error_type,omitempty"`
	// FirstByteDelay holds the upstream's answer this long before its
	// first byte goes to the client.
	FirstByteDelay time.Duration `yaml:"firstByteDelay" json:"first_byte_delay_ns,omitempty"`
	// EventsPerSecond passes at most this many Server-Sent Events a
	// second.
	EventsPerSecond float64 `yaml:"eventsPerSecond" json:"events_per_second,omitempty"`
	// StallAfterEvents passes this many events and then holds the stream
	// until the client leaves or the fault ends.
	StallAfterEvents *int64 `yaml:"stallAfterEvents" json:"stall_after_events,omitempty"`
	// TruncateAfterEvents passes this many events and then breaks the
	// connection.
	TruncateAfterEvents *int64 `yaml:"truncateAfterEvents" json:"truncate_after_events,omitempty"`
	// ErrorAfterEvents passes this many events, then sends an error event
	// in errorFormat's shape and ends the stream.
	ErrorAfterEvents *int64 `yaml:"errorAfterEvents" json:"error_after_events,omitempty"`
	// TruncateBody passes only this many bytes of the answer's body and
	// then breaks the connection.
	TruncateBody *config.Size `yaml:"truncateBody" json:"truncate_body,omitempty"`
	// SetHeaders are set on the answer, over the upstream's.
	SetHeaders map[string]string `yaml:"setHeaders" json:"set_headers,omitempty"`
}

// RouteFault is the gateway route fault that g configures, named name
// and seeded with seed: what relia run adds to the route while the fault
// is on.
func (g *GatewayFault) RouteFault(name string, seed uint64) gateway.Fault {
	return gateway.Fault{
		Name: name, Percentage: g.Percentage, Headers: g.Headers, JSONField: g.JSONField, JSONEquals: g.JSONEquals, JSONIn: g.JSONIn,
		NthRequest: g.NthRequest, FirstRequests: g.FirstRequests, Delay: g.Delay, AbortStatus: g.AbortStatus, RetryAfter: g.RetryAfter,
		ErrorFormat: g.ErrorFormat, ErrorType: g.ErrorType, FirstByteDelay: g.FirstByteDelay, EventsPerSecond: g.EventsPerSecond,
		StallAfterEvents: g.StallAfterEvents, TruncateAfterEvents: g.TruncateAfterEvents, ErrorAfterEvents: g.ErrorAfterEvents,
		TruncateBody: g.TruncateBody, SetHeaders: g.SetHeaders, Seed: seed,
	}
}

// Process fault actions.
const (
	ActionKill    = "kill"    // kill the replica; it is started again when the fault ends
	ActionRestart = "restart" // kill the replica and start it again at once
	ActionPause   = "pause"   // stop the replica (SIGSTOP) until the fault ends
)

// ProcessFault acts on one replica of a started service.
type ProcessFault struct {
	// Action is kill, restart or pause.
	Action string `yaml:"action" config:"required" json:"action,omitempty"`
	// Service names one of target.services, or a service of the demo
	// shop.
	Service string `yaml:"service" config:"required" json:"service,omitempty"`
	// Replica picks the replica (0-based); default a replica chosen from
	// the seed.
	Replica *int `yaml:"replica" json:"replica,omitempty"`
}

// AbortCondition ends the run early when the system under test is hurt
// more than the experiment allows: every fault is rolled back at once and
// the run exits with code 3. Give exactly one of burnRate and threshold.
type AbortCondition struct {
	// Name identifies the condition in the journal; default a description
	// of it.
	Name string `yaml:"name" json:"name,omitempty"`
	// BurnRate aborts when an SLO's error budget burns faster than this
	// over the window.
	BurnRate *BurnRateAbort `yaml:"burnRate" json:"burnRate,omitempty"`
	// Threshold aborts when a k6-style threshold fails over the window:
	// "http_req_failed:rate<0.2" or "http_req_duration:p(99)<1s".
	Threshold string `yaml:"threshold" json:"threshold,omitempty"`
	// Window is the trailing window the condition is judged over; default
	// 10s.
	Window time.Duration `yaml:"window" json:"window_ns,omitempty"`
	// For is how long the condition must stay breached before the run
	// aborts; default 0, at the first breach.
	For time.Duration `yaml:"for" json:"for_ns,omitempty"`
	// MinEvents is the least number of events the window must hold for a
	// breach to count; default 10.
	MinEvents int64 `yaml:"minEvents" json:"minEvents,omitempty"`
	// Phases limits the condition to these phases; default every phase.
	Phases []string `yaml:"phases" json:"phases,omitempty"`
}

// BurnRateAbort is a burn-rate abort condition.
type BurnRateAbort struct {
	// SLO is the id of one of the experiment's SLOs.
	SLO string `yaml:"slo" config:"required" json:"slo,omitempty"`
	// Above is the burn rate that aborts the run: 14.4 spends 2% of a
	// 30-day budget in an hour.
	Above float64 `yaml:"above" config:"required" json:"above,omitempty"`
}

// Generator is the load generator's tolerance for itself: when more than
// 1-minOnTime of the requests (and at least 10) leave over lateAfter
// late, the run is inconclusive. Left out, each phase's scenario says
// (10ms and 90% by default).
type Generator struct {
	// LateAfter is how late a request may leave and count as on time.
	LateAfter time.Duration `yaml:"lateAfter" json:"lateAfter_ns,omitempty"`
	// MinOnTime is the share of requests that must leave on time; 0
	// turns the generator's self-check off.
	MinOnTime load.OptionalRatio `yaml:"minOnTime" json:"minOnTime,omitempty"`
}

// Recovery configures how recovery after a fault is measured.
type Recovery struct {
	// Window is the length of the trailing window whose SLI must meet the
	// objective for a fault to count as recovered from; default 5s.
	Window time.Duration `yaml:"window" json:"window_ns,omitempty"`
	// Bound is the recovery time the scorecard accepts; default 30s.
	Bound time.Duration `yaml:"bound" json:"bound_ns,omitempty"`
}

// JSONSchema returns the JSON Schema of `kind: Experiment` documents, for
// editors (docs/schema/experiment.json).
func JSONSchema() ([]byte, error) { return config.Schema(Kind, Experiment{}) }
