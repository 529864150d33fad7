package callstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Sink takes batches of records: a store, or an exporter such as OTLP.
// Write either keeps the whole batch or returns an error, in which case
// the Writer keeps the batch and tries it again later, so a Sink must
// not keep part of a batch it reports as failed (stores write a batch in
// one transaction).
type Sink interface {
	Write(ctx context.Context, recs []Record) error
}

// Querier answers questions about stored calls. A store answers them from
// its database, a Client through a gateway's admin API, so that `relia
// calls` and `relia analyze` work the same against either.
type Querier interface {
	// Calls returns the calls that match q, newest first (oldest first
	// when q.AfterSeq is set, for following new calls).
	Calls(ctx context.Context, q Query) ([]Record, error)
	// Aggregate returns the rollups of the calls that match q.
	Aggregate(ctx context.Context, q AggregateQuery) ([]Aggregate, error)
	// Audit returns audit log entries, oldest first.
	Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// ErrBadQuery is wrapped by errors about a query that cannot be answered
// as asked (an unknown dimension, a step finer than a minute).
var ErrBadQuery = errors.New("bad query")

// Query selects stored calls. Zero fields match everything.
type Query struct {
	// From and To bound the calls' arrival time: From <= time < To. Zero
	// means unbounded.
	From, To time.Time
	// Route, API, Tenant, KeyID, Model, Gateway and Outcome match exactly.
	Route, API, Tenant, KeyID, Model, Gateway, Outcome string
	// Status is an exact status ("503") or a class ("5xx").
	Status string
	// Failed keeps only failed calls (Record.Failed).
	Failed bool
	// Text keeps calls where it appears, ignoring ASCII case, in the
	// path, the reason, the request id, the route, the tenant, the key
	// id, the target or the model.
	Text string
	// RequestID and TraceID find one call (or every call of a trace).
	RequestID, TraceID string
	// AfterSeq keeps calls stored after the one with that Seq and returns
	// them oldest first; `relia calls --follow` polls with it.
	AfterSeq int64
	// Limit caps the number of calls returned; 0 means 100.
	Limit int
}

// DefaultLimit is the number of calls a Query returns when its Limit is 0.
const DefaultLimit = 100

// statusRange returns the range of statuses q.Status selects.
func (q *Query) statusRange() (lo, hi int, err error) {
	s := q.Status
	if s == "" {
		return 0, 0, nil
	}
	if len(s) == 3 && s[1:] == "xx" && s[0] >= '1' && s[0] <= '5' {
		lo = int(s[0]-'0') * 100
		return lo, lo + 99, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 100 || n > 999 {
		return 0, 0, fmt.Errorf("%w: status %q is neither a status code nor a class such as 5xx", ErrBadQuery, s)
	}
	return n, n, nil
}

func (q *Query) limit() int {
	if q.Limit <= 0 {
		return DefaultLimit
	}
	return q.Limit
}

// Dimension is what aggregates can be grouped by.
type Dimension string

// The dimensions of aggregates.
const (
	ByRoute  Dimension = "route"
	ByAPI    Dimension = "api"
	ByTenant Dimension = "tenant"
	ByKey    Dimension = "key_id"
	ByModel  Dimension = "model"
)

// Dimensions lists every Dimension, in the order keys print.
var Dimensions = []Dimension{ByRoute, ByAPI, ByTenant, ByKey, ByModel}

// ParseDimension reads a dimension's name; "consumer" is ByKey.
func ParseDimension(s string) (Dimension, error) {
	if s == "consumer" || s == "key" {
		return ByKey, nil
	}
	for _, d := range Dimensions {
		if string(d) == s {
			return d, nil
		}
	}
	names := make([]string, len(Dimensions))
	for i, d := range Dimensions {
		names[i] = string(d)
	}
	return "", fmt.Errorf("%w: unknown dimension %q (want one of %s)", ErrBadQuery, s, strings.Join(names, ", "))
}

// The steps aggregates come in, besides 0 (the whole range at once).
const (
	Minute = time.Minute
	Hour   = time.Hour
	Day    = 24 * time.Hour
	Week   = 7 * Day
)

// AggregateQuery asks for rollups of calls over a time range.
type AggregateQuery struct {
	// From and To bound the range; both are rounded down to the
	// resolution the answer is read at (a minute, or an hour for steps
	// of an hour or more). A zero To means now.
	From, To time.Time
	// Step is the width of each bucket: Minute, Hour, Day, Week or a
	// multiple of a minute; 0 gives one bucket for the whole range. Days
	// and weeks start at midnight UTC (weeks on Monday).
	Step time.Duration
	// By lists the dimensions to group by; none gives one total per
	// bucket.
	By []Dimension
	// Route, API, Tenant, KeyID and Model keep only matching calls.
	Route, API, Tenant, KeyID, Model string
}

// Key names the group an Aggregate belongs to; only the dimensions the
// query grouped by are set.
type Key struct {
	Route  string `json:"route,omitempty"`
	API    string `json:"api,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	KeyID  string `json:"key_id,omitempty"`
	Model  string `json:"model,omitempty"`
}

// Get returns the key's value for d.
func (k Key) Get(d Dimension) string {
	switch d {
	case ByRoute:
		return k.Route
	case ByAPI:
		return k.API
	case ByTenant:
		return k.Tenant
	case ByKey:
		return k.KeyID
	case ByModel:
		return k.Model
	}
	return ""
}

func (k *Key) set(d Dimension, v string) {
	switch d {
	case ByRoute:
		k.Route = v
	case ByAPI:
		k.API = v
	case ByTenant:
		k.Tenant = v
	case ByKey:
		k.KeyID = v
	case ByModel:
		k.Model = v
	}
}

// project keeps only k's values of the dimensions in by.
func (k Key) project(by []Dimension) Key {
	var p Key
	for _, d := range by {
		p.set(d, k.Get(d))
	}
	return p
}

// String writes the key as "route=a tenant=b", or "all" for the empty
// key.
func (k Key) String() string {
	var parts []string
	for _, d := range Dimensions {
		if v := k.Get(d); v != "" {
			parts = append(parts, string(d)+"="+v)
		}
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// Aggregate is the rollup of the calls of one group in one bucket.
type Aggregate struct {
	// Time is the bucket's start; the range's start when the query's Step
	// is 0.
	Time time.Time `json:"time"`
	Key  Key       `json:"key"`
	// Calls counts the calls; Failed those that failed (Record.Failed),
	// Rejected those the gateway itself refused (Record.Rejected),
	// Status4xx and Status5xx those by status class.
	Calls     int64 `json:"calls"`
	Failed    int64 `json:"failed"`
	Rejected  int64 `json:"rejected"`
	Status4xx int64 `json:"status_4xx"`
	Status5xx int64 `json:"status_5xx"`
	// LatencySum and UpstreamSum add up the calls' latencies, for means.
	LatencySum  time.Duration `json:"-"`
	UpstreamSum time.Duration `json:"-"`
	// BytesIn, BytesOut, InputTokens, OutputTokens and Cost add up the
	// calls'.
	BytesIn      int64   `json:"bytes_in"`
	BytesOut     int64   `json:"bytes_out"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	Cost         float64 `json:"cost_usd"`
	// Latency is the calls' latency distribution, exact to outcome's
	// histogram precision (3 significant digits), so percentiles of any
	// group over any range are read from merged rollups, never averaged.
	Latency outcome.Histogram `json:"-"`
}

// ErrorRate is Failed/Calls, 0 without calls.
func (a *Aggregate) ErrorRate() float64 {
	if a.Calls == 0 {
		return 0
	}
	return float64(a.Failed) / float64(a.Calls)
}

// add adds r's figures to a.
func (a *Aggregate) add(r *Record) {
	a.Calls++
	if r.Failed() {
		a.Failed++
	}
	if r.Rejected() {
		a.Rejected++
	}
	switch r.Status / 100 {
	case 4:
		a.Status4xx++
	case 5:
		a.Status5xx++
	}
	a.LatencySum += r.Latency
	a.UpstreamSum += r.Upstream
	a.BytesIn += r.BytesIn
	a.BytesOut += r.BytesOut
	a.InputTokens += r.InputTokens
	a.OutputTokens += r.OutputTokens
	a.Cost += r.Cost
	a.Latency.Record(r.Latency)
}

// merge adds o's figures to a.
func (a *Aggregate) merge(o *Aggregate) {
	a.mergeCounts(o)
	a.Latency.Merge(&o.Latency)
}

// mergeCounts adds o's figures but its histogram to a.
func (a *Aggregate) mergeCounts(o *Aggregate) {
	a.Calls += o.Calls
	a.Failed += o.Failed
	a.Rejected += o.Rejected
	a.Status4xx += o.Status4xx
	a.Status5xx += o.Status5xx
	a.LatencySum += o.LatencySum
	a.UpstreamSum += o.UpstreamSum
	a.BytesIn += o.BytesIn
	a.BytesOut += o.BytesOut
	a.InputTokens += o.InputTokens
	a.OutputTokens += o.OutputTokens
	a.Cost += o.Cost
}

// AuditEntry is one line of the append-only audit log: an approval, a
// revocation, a subscription request, a config change.
type AuditEntry struct {
	// Seq is the entry's place in the log, assigned when it is appended.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who did it: an admin's name, "gateway" for a config
	// reload, a tenant for its own request.
	Actor string `json:"actor"`
	// Action is what was done: "subscription.request",
	// "subscription.approve", "subscription.revoke", "config.reload", ...
	Action string `json:"action"`
	// Tenant and API are what it was done to, where that applies.
	Tenant string `json:"tenant,omitempty"`
	API    string `json:"api,omitempty"`
	// Detail says more in words: a note, the config's digest.
	Detail string `json:"detail,omitempty"`
}

// AuditQuery selects audit log entries.
type AuditQuery struct {
	From, To    time.Time
	Tenant, API string
	// Action matches exactly, or every action under a prefix ending in a
	// dot ("subscription.").
	Action string
	// AfterSeq keeps entries appended after the one with that Seq.
	AfterSeq int64
	// Limit caps the entries returned (the latest ones); 0 means 100.
	Limit int
}

// Subscription is a tenant's access to an API, as API management keeps
// it.
type Subscription struct {
	Tenant string `json:"tenant"`
	API    string `json:"api"`
	// State is SubscriptionPending, SubscriptionApproved or
	// SubscriptionRevoked.
	State       string    `json:"state"`
	RequestedAt time.Time `json:"requested_at"`
	// DecidedAt and DecidedBy say when and by whom it was last approved
	// or revoked; zero while pending.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	DecidedBy string    `json:"decided_by,omitempty"`
	// Note is the requester's or the admin's note.
	Note string `json:"note,omitempty"`
}

// The states of a subscription.
const (
	SubscriptionPending  = "pending"
	SubscriptionApproved = "approved"
	SubscriptionRevoked  = "revoked"
)

// Retention says how long a store keeps what it holds. Rollups are kept
// longer than raw calls, so trends and forecasts reach back further than
// the calls themselves. Zero fields take the defaults.
type Retention struct {
	// Calls is how long raw calls are kept; 7 days by default. Calls are
	// stored a batch to a row, and a batch goes when its newest call is
	// past this age.
	Calls time.Duration `yaml:"calls" json:"calls"`
	// Minutes is how long per-minute rollups are kept; 30 days by
	// default.
	Minutes time.Duration `yaml:"minutes" json:"minutes"`
	// Hours is how long per-hour rollups are kept; 400 days by default,
	// so that a year is compared with the last.
	Hours time.Duration `yaml:"hours" json:"hours"`
}

func (r Retention) withDefaults() Retention {
	if r.Calls <= 0 {
		r.Calls = 7 * Day
	}
	if r.Minutes <= 0 {
		r.Minutes = 30 * Day
	}
	if r.Hours <= 0 {
		r.Hours = 400 * Day
	}
	return r
}
