package callstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// The schemas of the admin API's answers.
const (
	CallsSchema      = "relia/calls/v1"
	AggregatesSchema = "relia/call-aggregates/v1"
	AuditSchema      = "relia/audit/v1"
)

// CallsResponse is the admin API's answer to GET /calls and
// GET /calls/{id}.
type CallsResponse struct {
	Schema string   `json:"schema"`
	Calls  []Record `json:"calls"`
}

// AggregatesResponse is the answer to GET /calls/aggregate.
type AggregatesResponse struct {
	Schema     string      `json:"schema"`
	Aggregates []Aggregate `json:"aggregates"`
}

// AuditResponse is the answer to GET /audit.
type AuditResponse struct {
	Schema  string       `json:"schema"`
	Entries []AuditEntry `json:"entries"`
}

// Handler serves a Querier's answers over HTTP, for the gateway's admin
// API to mount:
//
//	GET /calls            the calls a query matches (parameters: see QueryFromValues)
//	GET /calls/{id}       one call by request id, or the calls of a trace by trace id
//	GET /calls/aggregate  rollups (parameters: see AggregateQueryFromValues)
//	GET /audit            the audit log (from, to, tenant, api, action, after_seq, limit)
//
// Errors are JSON {"error": "...", "reason": "..."} with status 400 for a
// bad query and 500 for a failing store.
func Handler(q Querier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		query, err := QueryFromValues(r.URL.Query())
		if err != nil {
			writeError(w, err)
			return
		}
		calls, err := q.Calls(r.Context(), query)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, CallsResponse{Schema: CallsSchema, Calls: nonNil(calls)})
	})
	mux.HandleFunc("GET /calls/aggregate", func(w http.ResponseWriter, r *http.Request) {
		query, err := AggregateQueryFromValues(r.URL.Query())
		if err != nil {
			writeError(w, err)
			return
		}
		aggs, err := q.Aggregate(r.Context(), query)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, AggregatesResponse{Schema: AggregatesSchema, Aggregates: nonNil(aggs)})
	})
	mux.HandleFunc("GET /calls/{id}", func(w http.ResponseWriter, r *http.Request) {
		calls, err := FindCall(r.Context(), q, r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		if len(calls) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no call with that request id or trace id", "reason": "not_found"})
			return
		}
		writeJSON(w, http.StatusOK, CallsResponse{Schema: CallsSchema, Calls: calls})
	})
	mux.HandleFunc("GET /audit", func(w http.ResponseWriter, r *http.Request) {
		query, err := AuditQueryFromValues(r.URL.Query())
		if err != nil {
			writeError(w, err)
			return
		}
		entries, err := q.Audit(r.Context(), query)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, AuditResponse{Schema: AuditSchema, Entries: nonNil(entries)})
	})
	return mux
}

// FindCall returns the call whose request id is id, or else the calls of
// the trace whose id is id: a call's whole story, its attempts,
// fallbacks and rejection reason included.
func FindCall(ctx context.Context, q Querier, id string) ([]Record, error) {
	calls, err := q.Calls(ctx, Query{RequestID: id, Limit: 10})
	if err != nil || len(calls) > 0 {
		return calls, err
	}
	return q.Calls(ctx, Query{TraceID: id, Limit: 1000})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrBadQuery) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error(), "reason": "bad_query"})
		return
	}
	writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "reason": "store_error"})
}

// Values writes q as the URL parameters QueryFromValues reads.
func (q Query) Values() url.Values {
	v := url.Values{}
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	for k, s := range map[string]string{"route": q.Route, "api": q.API, "tenant": q.Tenant, "key_id": q.KeyID, "model": q.Model,
		"gateway": q.Gateway, "outcome": q.Outcome, "status": q.Status, "q": q.Text, "request_id": q.RequestID, "trace_id": q.TraceID} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Failed {
		v.Set("failed", "true")
	}
	if q.AfterSeq > 0 {
		v.Set("after_seq", strconv.FormatInt(q.AfterSeq, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// QueryFromValues reads a Query from URL parameters: from and to (RFC
// 3339), route, api, tenant, key_id, model, gateway, outcome, status
// ("503" or "5xx"), failed, q (text), request_id, trace_id, after_seq,
// limit. An unknown parameter is an error, so a misspelt filter never
// silently matches everything.
func QueryFromValues(v url.Values) (Query, error) {
	var q Query
	p := params{v: v}
	q.From, q.To = p.time("from"), p.time("to")
	q.Route, q.API, q.Tenant, q.KeyID, q.Model = p.str("route"), p.str("api"), p.str("tenant"), p.str("key_id"), p.str("model")
	q.Gateway, q.Outcome, q.Status, q.Text = p.str("gateway"), p.str("outcome"), p.str("status"), p.str("q")
	q.RequestID, q.TraceID = p.str("request_id"), p.str("trace_id")
	q.Failed = p.bool("failed")
	q.AfterSeq = p.int("after_seq")
	q.Limit = int(p.int("limit"))
	if err := p.done(); err != nil {
		return q, err
	}
	if _, _, err := q.statusRange(); err != nil {
		return q, err
	}
	return q, nil
}

// Values writes q as the URL parameters AggregateQueryFromValues reads.
func (q AggregateQuery) Values() url.Values {
	v := url.Values{}
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	if q.Step > 0 {
		v.Set("step", q.Step.String())
	}
	if len(q.By) > 0 {
		by := make([]string, len(q.By))
		for i, d := range q.By {
			by[i] = string(d)
		}
		v.Set("by", strings.Join(by, ","))
	}
	for k, s := range map[string]string{"route": q.Route, "api": q.API, "tenant": q.Tenant, "key_id": q.KeyID, "model": q.Model} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// AggregateQueryFromValues reads an AggregateQuery from URL parameters:
// from and to (RFC 3339), step (a duration: "1m", "1h", "24h"), by
// (dimensions, comma-separated), route, api, tenant, key_id, model.
func AggregateQueryFromValues(v url.Values) (AggregateQuery, error) {
	var q AggregateQuery
	p := params{v: v}
	q.From, q.To = p.time("from"), p.time("to")
	if s := p.str("step"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			p.fail("step", err)
		}
		q.Step = d
	}
	if s := p.str("by"); s != "" {
		for _, name := range strings.Split(s, ",") {
			d, err := ParseDimension(strings.TrimSpace(name))
			if err != nil {
				return q, err
			}
			q.By = append(q.By, d)
		}
	}
	q.Route, q.API, q.Tenant, q.KeyID, q.Model = p.str("route"), p.str("api"), p.str("tenant"), p.str("key_id"), p.str("model")
	return q, p.done()
}

// Values writes q as the URL parameters AuditQueryFromValues reads.
func (q AuditQuery) Values() url.Values {
	v := url.Values{}
	setTime(v, "from", q.From)
	setTime(v, "to", q.To)
	for k, s := range map[string]string{"tenant": q.Tenant, "api": q.API, "action": q.Action} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.AfterSeq > 0 {
		v.Set("after_seq", strconv.FormatInt(q.AfterSeq, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// AuditQueryFromValues reads an AuditQuery from URL parameters.
func AuditQueryFromValues(v url.Values) (AuditQuery, error) {
	var q AuditQuery
	p := params{v: v}
	q.From, q.To = p.time("from"), p.time("to")
	q.Tenant, q.API, q.Action = p.str("tenant"), p.str("api"), p.str("action")
	q.AfterSeq = p.int("after_seq")
	q.Limit = int(p.int("limit"))
	return q, p.done()
}

func setTime(v url.Values, k string, t time.Time) {
	if !t.IsZero() {
		v.Set(k, t.UTC().Format(time.RFC3339Nano))
	}
}

// params reads URL parameters, remembering the first error and which
// parameters were read.
type params struct {
	v    url.Values
	seen map[string]bool
	err  error
}

func (p *params) str(k string) string {
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[k] = true
	return p.v.Get(k)
}

func (p *params) fail(k string, err error) {
	if p.err == nil {
		p.err = fmt.Errorf("%w: parameter %s: %v", ErrBadQuery, k, err)
	}
}

func (p *params) time(k string) time.Time {
	s := p.str(k)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.fail(k, errors.New("not an RFC 3339 time"))
	}
	return t
}

func (p *params) int(k string) int64 {
	s := p.str(k)
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		p.fail(k, errors.New("not a whole number"))
	}
	return n
}

func (p *params) bool(k string) bool {
	s := p.str(k)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail(k, errors.New("not true or false"))
	}
	return b
}

func (p *params) done() error {
	if p.err != nil {
		return p.err
	}
	for k := range p.v {
		if !p.seen[k] {
			return fmt.Errorf("%w: unknown parameter %q", ErrBadQuery, k)
		}
	}
	return nil
}

// aggregateJSON is an Aggregate's JSON form: its figures, the latency
// sums in ns, the usual percentiles in ns for people and scripts, and the
// histogram itself (outcome's binary form, base64) so that a client can
// merge aggregates and read any percentile exactly as the store would.
type aggregateJSON struct {
	aggregateFields
	LatencySumNS  int64  `json:"latency_sum_ns"`
	UpstreamSumNS int64  `json:"upstream_sum_ns"`
	P50NS         int64  `json:"p50_ns"`
	P95NS         int64  `json:"p95_ns"`
	P99NS         int64  `json:"p99_ns"`
	LatencyHist   []byte `json:"latency_hist"`
}

type aggregateFields Aggregate

// MarshalJSON writes the aggregate's JSON form.
func (a Aggregate) MarshalJSON() ([]byte, error) {
	hist, err := a.Latency.AppendBinary(nil)
	if err != nil {
		return nil, err
	}
	a.Time = a.Time.UTC()
	return json.Marshal(aggregateJSON{
		aggregateFields: aggregateFields(a),
		LatencySumNS:    int64(a.LatencySum), UpstreamSumNS: int64(a.UpstreamSum),
		P50NS: int64(a.Latency.Quantile(0.5)), P95NS: int64(a.Latency.Quantile(0.95)), P99NS: int64(a.Latency.Quantile(0.99)),
		LatencyHist: hist,
	})
}

// UnmarshalJSON reads what MarshalJSON writes; the percentiles come back
// from the histogram.
func (a *Aggregate) UnmarshalJSON(b []byte) error {
	var j aggregateJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = Aggregate(j.aggregateFields)
	a.LatencySum, a.UpstreamSum = time.Duration(j.LatencySumNS), time.Duration(j.UpstreamSumNS)
	a.Latency = outcome.Histogram{}
	if len(j.LatencyHist) > 0 {
		if err := a.Latency.UnmarshalBinary(j.LatencyHist); err != nil {
			return err
		}
	}
	return nil
}

// Client asks a gateway's admin API what its call store holds; it is a
// Querier, so `relia calls --admin URL` works as against the database.
type Client struct {
	base string
	hc   *http.Client
}

// NewClient returns a client of the admin API at base
// ("http://127.0.0.1:9901"); nil hc is http.DefaultClient.
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), hc: hc}
}

var _ Querier = (*Client)(nil)

// Calls asks GET /calls.
func (c *Client) Calls(ctx context.Context, q Query) ([]Record, error) {
	var resp CallsResponse
	err := c.get(ctx, "/calls", q.Values(), &resp)
	return resp.Calls, err
}

// Call asks GET /calls/{id}: a call by request id, or a trace's calls.
func (c *Client) Call(ctx context.Context, id string) ([]Record, error) {
	var resp CallsResponse
	err := c.get(ctx, "/calls/"+url.PathEscape(id), nil, &resp)
	var se *StatusError
	if errors.As(err, &se) && se.Status == http.StatusNotFound {
		return nil, nil
	}
	return resp.Calls, err
}

// Aggregate asks GET /calls/aggregate.
func (c *Client) Aggregate(ctx context.Context, q AggregateQuery) ([]Aggregate, error) {
	var resp AggregatesResponse
	err := c.get(ctx, "/calls/aggregate", q.Values(), &resp)
	return resp.Aggregates, err
}

// Audit asks GET /audit.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	var resp AuditResponse
	err := c.get(ctx, "/audit", q.Values(), &resp)
	return resp.Entries, err
}

// StatusError is an admin API's refusal: its status and what it said.
type StatusError struct {
	Status int
	Reason string
	Msg    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("admin API answered %d: %s", e.Status, e.Msg)
}

func (c *Client) get(ctx context.Context, path string, v url.Values, out any) error {
	u := c.base + path
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("asking %s: %w", u, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("asking %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Reason string }
		json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(bytes.TrimSpace(body)))
		}
		se := &StatusError{Status: resp.StatusCode, Reason: e.Reason, Msg: e.Error}
		if resp.StatusCode == http.StatusBadRequest {
			return fmt.Errorf("%w: %w", ErrBadQuery, se)
		}
		return se
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("reading %s: %w", u, err)
	}
	return nil
}
