package aidemo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/llmload"
)

// The providers behind the gateway.
const (
	ProviderA = "alpha" // the primary
	ProviderB = "beta"  // the fallback
)

// Providers lists the providers, primary first.
var Providers = []string{ProviderA, ProviderB}

// Tenants are the assistant's tenants, as requests name them in "user".
var Tenants = []string{"acme", "globex", "initech"}

// QuotaTenant is the tenant with a small token quota, the one a burst of
// its own traffic exhausts.
const QuotaTenant = "initech"

// Defaults of Options.
const (
	// DefaultQuotaTokens is QuotaTenant's quota in tokens a minute.
	DefaultQuotaTokens = 600
	// Model is the public model the assistant asks for.
	Model = "gpt-4o-mini"
	// AskPath is the assistant's endpoint.
	AskPath = "/ask"
	// SystemPrompt is what the assistant puts before every question.
	SystemPrompt = "You are relia's demo assistant. Answer in one short paragraph."
	// maxAskBody bounds a question.
	maxAskBody = 64 << 10
)

// HedgeAfter is how long the resilient route waits for alpha's first
// token before it hedges the call on beta.
const HedgeAfter = 200 * time.Millisecond

// The providers' pacing: what an answer costs on a healthy provider.
const (
	timeToFirstToken = 80 * time.Millisecond
	tokensPerSecond  = 200
	outputTokens     = 24
)

// Options configure the stack.
type Options struct {
	// Seed seeds each provider's fault decisions and answers (derived per
	// provider): the same seed and the same requests give the same run.
	Seed uint64
	// Clock paces the providers and times the gateway's timeouts,
	// Retry-After, breakers and quota windows; nil means the real clock.
	Clock clock.Clock
	// Resilient turns on the route's failover, short timeouts and
	// breakers (see the package comment).
	Resilient bool
	// QuotaTokens is QuotaTenant's quota in tokens a minute; zero means
	// DefaultQuotaTokens.
	QuotaTokens int64
}

// Stack is the running AI stack.
type Stack struct {
	providers map[string]*mock.Server
	gateway   *ai.Service
	servers   []*http.Server
	gwURL     string
	url       string
	keys      map[string]string // tenant -> API key
	client    *http.Client
	cfg       []byte
}

// ProviderSeed is the seed provider name's simulator gets from the
// stack's seed, so that a plan can record it as a decision.
func ProviderSeed(seed uint64, name string) int64 {
	h := seed ^ 0x9e3779b97f4a7c15
	for _, c := range []byte(name) {
		h = (h ^ uint64(c)) * 0x100000001b3
	}
	return int64(h >> 1)
}

// Start starts the providers, the gateway and the assistant.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.QuotaTokens == 0 {
		o.QuotaTokens = DefaultQuotaTokens
	}
	if o.QuotaTokens < 0 {
		return nil, fmt.Errorf("starting the AI demo: quota of %d tokens a minute is negative", o.QuotaTokens)
	}
	s := &Stack{providers: map[string]*mock.Server{}, keys: map[string]string{}}
	urls := map[string]string{}
	for _, name := range Providers {
		m, err := mock.New(mock.Options{Clock: o.Clock, Seed: ProviderSeed(o.Seed, name), TokensPerSecond: tokensPerSecond,
			TimeToFirstToken: timeToFirstToken, OutputTokens: outputTokens})
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("starting provider %s: %w", name, err)
		}
		u, err := s.serve(m)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("starting provider %s: %w", name, err)
		}
		s.providers[name], urls[name] = m, u+"/v1"
	}
	for _, t := range Tenants {
		s.keys[t] = "sk-" + t
	}
	s.cfg = gatewayConfig(urls, o)
	cfg, err := ai.Parse("ai-demo-gateway.yaml", s.cfg)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("starting the AI gateway: %w", err)
	}
	if s.gateway, err = ai.New(cfg, ai.ShippedCatalog(), ai.Options{Clock: o.Clock}); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting the AI gateway: %w", err)
	}
	if s.gwURL, err = s.serve(s.gateway); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting the AI gateway: %w", err)
	}
	s.client = &http.Client{Transport: &ai.UpstreamTransport{ReadBuffer: 4 << 10}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AskPath, s.ask)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	if s.url, err = s.serve(mux); err != nil {
		s.Close()
		return nil, fmt.Errorf("starting the assistant: %w", err)
	}
	return s, nil
}

// serve serves h on a loopback port of its own and returns its URL.
func (s *Stack) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go func() { _ = srv.Serve(ln) }() // ends with Close
	return "http://" + ln.Addr().String(), nil
}

// gatewayConfig is the AIGateway document of the stack.
func gatewayConfig(urls map[string]string, o Options) []byte {
	var b bytes.Buffer
	b.WriteString("kind: AIGateway\nversion: relia/v1\nmetadata: {name: ai-demo}\nspec:\n  providers:\n")
	breaker := "{consecutiveFailures: 1000000, openDuration: 1s}" // never trips
	if o.Resilient {
		breaker = "{consecutiveFailures: 2, openDuration: 10s}"
	}
	for _, name := range Providers {
		fmt.Fprintf(&b, "    - {name: %s, type: openai, url: %q, keys: [{name: %s-key, value: sk-%s}], breaker: %s}\n", name, urls[name], name, name, breaker)
	}
	b.WriteString("  routes:\n    - model: " + Model + "\n")
	if o.Resilient {
		// beta takes a trickle of first attempts, enough to stay known
		// good, and every call alpha fails before its first token. A call
		// whose first token has not come in HedgeAfter is hedged on beta,
		// the first stream with a token winning: a slow first token costs
		// HedgeAfter plus beta's, within the demo's 500 ms TTFT objective.
		// Hedges share the retry budget, whose ratio of 1 lets every call
		// of a slow alpha hedge once.
		b.WriteString("      targets: [{provider: alpha, weight: 99}, {provider: beta, weight: 1}]\n")
		fmt.Fprintf(&b, "      timeouts: {firstToken: 2s, idle: 500ms, total: 30s}\n      maxAttempts: 3\n      retryBudget: {ratio: 1, minPerSecond: 5}\n      hedgeAfter: %s\n", HedgeAfter)
	} else {
		b.WriteString("      targets: [{provider: alpha}]\n      timeouts: {firstToken: 30s, idle: 30s, total: 60s}\n      maxAttempts: 1\n")
	}
	b.WriteString("  tenants:\n")
	for _, t := range Tenants {
		fmt.Fprintf(&b, "    - name: %s\n      keys: [{name: %s-key, value: sk-%s}]\n", t, t, t)
		if t == QuotaTenant {
			fmt.Fprintf(&b, "      quotas: [{tokensPerMinute: %d}]\n", o.QuotaTokens)
		}
	}
	return b.Bytes()
}

// GatewayConfig is the AIGateway document the stack's gateway runs.
func (s *Stack) GatewayConfig() []byte { return bytes.Clone(s.cfg) }

// URL is the assistant's base URL.
func (s *Stack) URL() string { return s.url }

// GatewayURL is the AI gateway's base URL.
func (s *Stack) GatewayURL() string { return s.gwURL }

// Provider returns the simulator of the provider name (ProviderA or
// ProviderB), nil for another name.
func (s *Stack) Provider(name string) *mock.Server { return s.providers[name] }

// Close stops everything the stack started.
func (s *Stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	for i := len(s.servers) - 1; i >= 0; i-- {
		if err := s.servers[i].Shutdown(ctx); err != nil {
			errs = append(errs, s.servers[i].Close())
		}
	}
	s.servers = nil
	if s.gateway != nil {
		errs = append(errs, s.gateway.Close())
		s.gateway = nil
	}
	return errors.Join(errs...)
}

// apiError writes an error in OpenAI's shape.
func apiError(w http.ResponseWriter, status int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": "assistant_error", "reason": reason}})
	_, _ = w.Write(b)
}

// ask answers one question: the user's chat request, its tenant's key
// and the assistant's system prompt, streamed through the gateway.
func (s *Stack) ask(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAskBody))
	if err != nil {
		apiError(w, http.StatusRequestEntityTooLarge, "too_large", "reading the question: "+err.Error())
		return
	}
	var req map[string]any
	if err := json.Unmarshal(body, &req); err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", "reading the question: "+err.Error())
		return
	}
	user, _ := req["user"].(string)
	key, ok := s.keys[user]
	if !ok {
		apiError(w, http.StatusBadRequest, "unknown_tenant", fmt.Sprintf("user %q is none of the tenants %s", user, strings.Join(Tenants, ", ")))
		return
	}
	msgs, _ := req["messages"].([]any)
	req["messages"] = append([]any{map[string]any{"role": "system", "content": SystemPrompt}}, msgs...)
	req["model"], req["stream"] = Model, true
	req["stream_options"] = map[string]any{"include_usage": true}
	out, _ := json.Marshal(req) // what was decoded encodes
	greq, err := http.NewRequestWithContext(r.Context(), http.MethodPost, s.gwURL+"/v1/chat/completions", bytes.NewReader(out))
	if err != nil {
		apiError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	greq.Header.Set("Content-Type", "application/json")
	greq.Header.Set("Authorization", "Bearer "+key)
	resp, err := s.client.Do(greq)
	if err != nil {
		apiError(w, http.StatusBadGateway, "model_unavailable", "calling the model: "+err.Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		detail, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get(llmload.QuotaHeader) != "" {
			// The tenant's own quota: its answer, as the gateway gave it.
			for _, h := range []string{"Retry-After", llmload.QuotaHeader, llmload.QuotaHeader + "-Reset", "Content-Type"} {
				if v := resp.Header.Get(h); v != "" {
					w.Header().Set(h, v)
				}
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = w.Write(detail)
			return
		}
		apiError(w, http.StatusBadGateway, "model_unavailable", fmt.Sprintf("the model answered %d: %s", resp.StatusCode, bytes.TrimSpace(detail)))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	buf := make([]byte, 4<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return // the gateway ended the stream (an error event included) or broke it: so does the assistant
		}
	}
}
