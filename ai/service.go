package ai

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/resilience"
)

// Options are what a Service takes from its host besides its config.
type Options struct {
	// Transport sends requests to providers. Nil means an
	// UpstreamTransport of the Service's own: the gateway's HTTP/1.1
	// client (gateway/upstream) for http:// providers.
	Transport http.RoundTripper
	// Clock is the source of time for timeouts, Retry-After, breakers,
	// budgets and quota windows; nil means the real clock.
	Clock clock.Clock
	// Registry receives the GenAI metrics; nil means none are kept.
	Registry prometheus.Registerer
	// Logger receives one record per call (level info, message
	// "ai call"); nil means none.
	Logger *slog.Logger
	// OnRecord, when set, is given each call's record too (the gateway's
	// access log and call store).
	OnRecord func(Record)
	// Observer receives the resilience events of breakers and hedges.
	Observer resilience.Observer
	// Redis is the client of the shared quota store; nil makes the
	// Service dial spec.quotaStore.redis itself when it is set.
	Redis redis.UniversalClient
	// Prompts are the prompt documents served under /prompts/.
	Prompts []*Prompt
}

// Service is the AI gateway's request handling: an http.Handler serving
// the OpenAI-compatible ingress (/v1/chat/completions, /v1/responses, /v1/embeddings,
// /v1/models), the Anthropic-compatible /v1/messages and the prompt APIs
// (/prompts/{name}) over the configured providers. It is safe for
// concurrent use; Reload swaps its config atomically.
type Service struct {
	clock     clock.Clock
	epoch     time.Time
	transport http.RoundTripper
	// ownTransport is transport when the Service made it.
	ownTransport *UpstreamTransport
	observer     resilience.Observer
	logger       *slog.Logger
	onRecord     func(Record)
	metrics      *metrics
	quotas       *quotas
	state        atomic.Pointer[state]
	// waits holds the handed-off streams that wait for their providers
	// with no goroutine (Relay).
	waits streamWaits
}

// New builds a Service from a validated config and the catalog it was
// validated against.
func New(cfg *Config, cat *Catalog, o Options) (*Service, error) {
	if cat == nil {
		cat = ShippedCatalog()
	}
	if err := cfg.Validate(cat); err != nil {
		return nil, err
	}
	s := &Service{clock: clock.OrReal(o.Clock), transport: o.Transport, observer: o.Observer, logger: o.Logger, onRecord: o.OnRecord}
	s.epoch = s.clock.Now()
	if s.transport == nil {
		// A small write buffer: a stream holds its connection for as
		// long as it lasts, and the request is written once. The read
		// buffer is the connection's usual 16 KB: a stream that waits
		// for its next event lends it out (ParkReadBuffer), and one
		// that reads an answer which came at once takes two reads, not
		// twenty (with 1 KB: 25.6 reads and about 270 µs of CPU a
		// 100-token stream at half the max rate in bench/ai, against
		// 8.6 and about 232 µs).
		s.ownTransport = &UpstreamTransport{WriteBuffer: 1 << 10}
		s.transport = s.ownTransport
	}
	m, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	q, err := newQuotas(cfg, o.Redis, s.clock)
	if err != nil {
		return nil, err
	}
	s.quotas = q
	st, err := s.build(cfg, cat, nil)
	if err != nil {
		return nil, err
	}
	if err := s.buildPrompts(st, o.Prompts); err != nil {
		return nil, err
	}
	s.limitConns(cfg)
	s.state.Store(st)
	return s, nil
}

// limitConns gives relia's own transport each provider's maxConnections.
// A transport of another kind bounds its connections itself.
func (s *Service) limitConns(cfg *Config) {
	ut, ok := s.transport.(*UpstreamTransport)
	if !ok {
		return
	}
	limits := map[string]int{}
	for _, p := range cfg.Spec.Providers {
		u, err := url.Parse(p.URL)
		if err != nil {
			continue // Validate refused it
		}
		addr := hostPort(u)
		limits[addr] = max(limits[addr], orDefault(p.MaxConnections, DefaultMaxConnections))
	}
	for addr, n := range limits {
		ut.SetMaxConns(addr, n)
	}
}

// Reload swaps in a new config and catalog; the breakers, Retry-After
// waits and quota counters of what stays the same carry over. On error
// the old config keeps serving.
func (s *Service) Reload(cfg *Config, cat *Catalog, prompts []*Prompt) error {
	if cat == nil {
		cat = ShippedCatalog()
	}
	if err := cfg.Validate(cat); err != nil {
		return err
	}
	st, err := s.build(cfg, cat, s.state.Load())
	if err != nil {
		return err
	}
	if err := s.buildPrompts(st, prompts); err != nil {
		return err
	}
	if err := s.quotas.reload(cfg); err != nil {
		return err
	}
	s.limitConns(cfg)
	s.state.Store(st)
	return nil
}

// Close releases what the Service opened itself (a Redis client, the
// idle connections of its own transport, the epoll set of handed-off
// streams: one that waits in it goes on waiting on a goroutine).
func (s *Service) Close() error {
	s.waits.Close()
	if s.ownTransport != nil {
		s.ownTransport.CloseIdle()
	}
	return s.quotas.close()
}

// Caller is who makes a call, as the host authenticated it: relia
// gateway's API keys and JWT tenants name the tenant. A request without
// one is identified by the AI config's own tenant keys.
type Caller struct {
	// Tenant names a tenant of spec.tenants.
	Tenant string
	// Key identifies the credential used (a key's id, never the secret),
	// for per-key quotas and records.
	Key string
}

type callerKey struct{}

// WithCaller returns ctx carrying the caller of a request.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

type timeoutKey struct{}

// WithTimeout returns ctx carrying the host's bound on the whole call
// made with ctx (relia gateway's route timeout): the call ends at the
// shorter of it and the model route's timeouts.total, as a timeout (504
// before the answer began, an error event in a stream).
func WithTimeout(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, timeoutKey{}, d)
}

type recordHookKey struct{}

// WithRecordHook returns ctx carrying fn, which is given the record of
// the call made with ctx once it ends (besides Options.OnRecord): the
// host that serves one request learns that request's model, tokens, cost
// and fallback path. The record is the call's own, which the Service
// does not touch again: fn may keep it rather than copy it.
func WithRecordHook(ctx context.Context, fn func(*Record)) context.Context {
	return context.WithValue(ctx, recordHookKey{}, fn)
}

// Paths the Service serves, for a host that routes them to it.
var Paths = []string{"/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/models", "/v1/messages", "/prompts/"}

// Request is what the Service reads of a client's request. A host that
// read the request itself (relia gateway's edge) hands these over
// through Serve, and makes no *http.Request and no http.Header for it.
type Request struct {
	// Method and Path are the request line's.
	Method, Path string
	// Query is the query string, without its '?'.
	Query string
	// Header gives the first value of a field by its name (any case):
	// the Service reads the API key (Authorization, X-Api-Key).
	Header interface{ Get(name string) string }
	// Body is the request's body; nil means none.
	Body io.Reader
	// ContentLength is the body's length as the request's head announced
	// it, 0 or -1 when it did not. It only sizes the first buffer the
	// body is read into, never above readChunk bytes: memory follows the
	// bytes received.
	ContentLength int64
}

// ServeHTTP serves one request of the AI ingress.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Serve(r.Context(), w, &Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header, Body: r.Body, ContentLength: r.ContentLength})
}

// Serve serves one request of the AI ingress, as ServeHTTP does; ctx is
// the request's context (the host's WithCaller, WithTimeout and
// WithRecordHook values included).
func (s *Service) Serve(ctx context.Context, w http.ResponseWriter, r *Request) {
	st := s.state.Load()
	p := r.Path
	var eg egress = openAIEgress{}
	if p == "/v1/messages" {
		eg = anthropicEgress{}
	}
	switch {
	case p == "/v1/models" && r.Method == http.MethodGet:
	case r.Method != http.MethodPost:
		eg.writeError(w, &apiError{status: http.StatusMethodNotAllowed, typ: wire.ErrTypeInvalidRequest, message: r.Method + " is not allowed here"})
		return
	}
	caller, aerr := s.identify(ctx, r, st)
	if aerr != nil {
		eg.writeError(w, aerr)
		return
	}
	caller.hook, _ = ctx.Value(recordHookKey{}).(func(*Record))
	if p == "/v1/models" {
		s.serveModels(w, st, caller)
		return
	}
	var body []byte
	var err error
	if r.Body != nil {
		body, err = readAtMostSized(r.Body, st.maxBody(), r.ContentLength)
	}
	if err != nil {
		return // the client went away
	}
	if len(body) > st.maxBody() {
		eg.writeError(w, &apiError{status: http.StatusRequestEntityTooLarge, typ: wire.ErrTypeInvalidRequest, code: "request_too_large", message: fmt.Sprintf("the request body is over %d bytes", st.maxBody())})
		return
	}
	switch {
	case p == "/v1/chat/completions":
		var req wire.ChatRequest
		if err := decodeChatRequest(body, &req); err != nil {
			eg.writeError(w, badRequest("the body is not a chat completion request: "+err.Error()))
			return
		}
		req.Raw = body
		s.chat(ctx, w, st, caller, &req, eg, "chat")
	case p == "/v1/responses":
		var rr wire.ResponsesRequest
		if err := json.Unmarshal(body, &rr); err != nil {
			eg.writeError(w, badRequest("the body is not a Responses request: "+err.Error()))
			return
		}
		req, err := fromResponses(&rr)
		if err != nil {
			eg.writeError(w, badRequest(err.Error()))
			return
		}
		s.chat(ctx, w, st, caller, req, &responsesEgress{req: &rr, created: s.clock.Now().Unix()}, "chat")
	case p == "/v1/messages":
		var areq wire.MessagesRequest
		if err := json.Unmarshal(body, &areq); err != nil {
			eg.writeError(w, badRequest("the body is not a Messages request: "+err.Error()))
			return
		}
		req, err := fromAnthropic(&areq)
		if err != nil {
			eg.writeError(w, badRequest(err.Error()))
			return
		}
		s.chat(ctx, w, st, caller, req, eg, "chat")
	case p == "/v1/embeddings":
		var req wire.EmbeddingRequest
		if err := json.Unmarshal(body, &req); err != nil {
			eg.writeError(w, badRequest("the body is not an embeddings request: "+err.Error()))
			return
		}
		req.Raw = body
		s.embeddings(ctx, w, st, caller, &req)
	case strings.HasPrefix(p, "/prompts/"):
		s.servePrompt(ctx, w, r, st, caller, strings.TrimPrefix(p, "/prompts/"), body)
	default:
		eg.writeError(w, &apiError{status: http.StatusNotFound, typ: wire.ErrTypeNotFound, message: "no such endpoint: " + p})
	}
}

// readAtMost reads r to its end, or to one byte past limit, which tells
// a body over the limit. It is io.ReadAll of an io.LimitReader without
// the reader's allocation; its buffer grows with the bytes received.
func readAtMost(r io.Reader, limit int) ([]byte, error) {
	return readAtMostSized(r, limit, 0)
}

// readChunk is the most readAtMost reads into before any byte came.
const readChunk = 512

// readAtMostSized is readAtMost of a body whose head announced its
// length: one short of readChunk bytes is read into a buffer of its
// size, which then needs no growth (the one spare byte takes the read
// that finds the end).
func readAtMostSized(r io.Reader, limit int, announced int64) ([]byte, error) {
	size := min(readChunk, limit+1)
	if announced > 0 && announced < int64(size) {
		size = int(announced) + 1
	}
	b := make([]byte, 0, size)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):min(cap(b), limit+1)])
		b = b[:len(b)+n]
		if err == io.EOF || len(b) > limit {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

func (st *state) maxBody() int {
	if n := st.cfg.Spec.MaxBodySize; n > 0 {
		return int(n)
	}
	return 4 << 20
}

// identify finds the caller's tenant: the host's Caller, else the
// request's key among the tenants' keys. With no tenants configured,
// everyone is the anonymous tenant.
func (s *Service) identify(ctx context.Context, r *Request, st *state) (*caller, *apiError) {
	if c, ok := ctx.Value(callerKey{}).(Caller); ok {
		t := st.tenant(c.Tenant)
		if t == nil && len(st.tenants) > 0 {
			return nil, &apiError{status: http.StatusForbidden, typ: wire.ErrTypePermission, code: "unknown_tenant", reason: "unknown_tenant", message: fmt.Sprintf("tenant %q may not call the AI gateway", c.Tenant)}
		}
		return &caller{tenant: t, name: c.Tenant, key: c.Key}, nil
	}
	if len(st.tenants) == 0 {
		return &caller{}, nil
	}
	key := bearer(r)
	if key == "" {
		return nil, &apiError{status: http.StatusUnauthorized, typ: wire.ErrTypeAuthentication, code: "missing_api_key", reason: "missing_api_key", message: "no API key: send Authorization: Bearer KEY"}
	}
	for k, t := range st.byKey {
		if subtle.ConstantTimeCompare([]byte(k), []byte(key)) == 1 {
			return &caller{tenant: t, name: t.cfg.Name, key: t.keyNames[k]}, nil
		}
	}
	return nil, &apiError{status: http.StatusUnauthorized, typ: wire.ErrTypeAuthentication, code: "invalid_api_key", reason: "invalid_api_key", message: "the API key is not known"}
}

func bearer(r *Request) string {
	if r.Header == nil {
		return ""
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return r.Header.Get("X-Api-Key")
}

func (s *Service) serveModels(w http.ResponseWriter, st *state, c *caller) {
	list := wire.ModelList{Object: "list", Data: []wire.ModelInfo{}}
	for _, m := range st.catalog.Models() {
		if _, ok := st.routes[m.Name]; !ok || !c.mayCall(m) {
			continue
		}
		list.Data = append(list.Data, wire.ModelInfo{ID: m.Name, Object: "model", Created: 0, OwnedBy: "relia"})
	}
	writeJSON(w, http.StatusOK, list)
}

// apiError is an error answered to a client, in the ingress's format.
type apiError struct {
	status     int
	typ        string
	code       string
	message    string
	reason     string
	retryAfter time.Duration
	// quota names the exhausted quota and resetAt when it resets.
	quota   string
	resetAt time.Time
	// raw is a provider's own error body, relayed as is to a client of
	// the same format.
	raw []byte
}

func badRequest(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: wire.ErrTypeInvalidRequest, message: msg}
}

// clientErrorOf relays a provider's refusal of the request itself.
func clientErrorOf(ce *callError) *apiError {
	e := &apiError{status: ce.status, typ: wire.ErrTypeInvalidRequest, message: ce.message}
	if e.status == 0 {
		e.status = http.StatusBadRequest
	}
	if ce.kind == kindContextLength {
		e.code = wire.CodeContextLength
	}
	return e
}

func (e *apiError) body() []byte {
	obj := map[string]any{"message": e.message, "type": e.typ, "param": nil, "code": nil}
	if e.code != "" {
		obj["code"] = e.code
	}
	if e.reason != "" {
		obj["reason"] = e.reason
	}
	if e.quota != "" {
		obj["quota"] = e.quota
		obj["resets_at"] = e.resetAt.UTC().Format(time.RFC3339)
	}
	b, _ := json.Marshal(map[string]any{"error": obj})
	return b
}

func (e *apiError) headers(h http.Header) {
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	if e.quota != "" {
		h.Set("X-Relia-Quota", e.quota)
		h.Set("X-Relia-Quota-Reset", e.resetAt.UTC().Format(time.RFC3339))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding the answer failed","type":"server_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

var errStreamIdle = errors.New("no token within the idle timeout")
