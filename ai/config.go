package ai

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// Kind is the kind of the AI gateway's config document.
const Kind = "AIGateway"

// Provider types relia has adapters for.
const (
	ProviderOpenAI           = "openai"
	ProviderOpenAICompatible = "openai-compatible"
	ProviderAzure            = "azure"
	ProviderAnthropic        = "anthropic"
	ProviderGemini           = "gemini"
	ProviderBedrock          = "bedrock"
)

var providerTypes = []string{ProviderOpenAI, ProviderOpenAICompatible, ProviderAzure, ProviderAnthropic, ProviderGemini, ProviderBedrock}

// Config is a `kind: AIGateway` document: the providers relia calls,
// the routes of each public model, the tenants that may call them and
// their quotas.
type Config struct {
	// Metadata names the AI gateway.
	Metadata Metadata `yaml:"metadata"`
	// Spec is its providers, routes, tenants and quotas.
	Spec Spec `yaml:"spec"`

	doc config.Document
}

// Metadata names the document.
type Metadata struct {
	// Name identifies the AI gateway in metrics and shared quota keys.
	Name string `yaml:"name" config:"required"`
}

// Spec is the body of an AIGateway document.
type Spec struct {
	// Providers are the model APIs relia calls, each with its
	// credentials.
	Providers []Provider `yaml:"providers"`
	// Routes say which providers serve each public model (a name or an
	// alias of the catalog) and how calls to it fail over.
	Routes []Route `yaml:"routes"`
	// Tenants are who may call, with their keys, the models and prompts
	// each may use, and their quotas. With no tenants, any caller may
	// call anything and no quota applies.
	Tenants []Tenant `yaml:"tenants"`
	// QuotaStore is where quota counters live: in memory (each replica
	// counts on its own) unless redis is set.
	QuotaStore QuotaStore `yaml:"quotaStore"`
	// Logging says what goes into each call's record besides its figures.
	Logging Logging `yaml:"logging"`
	// MaxBodySize bounds a request body; default 4MiB. Larger requests
	// get 413.
	MaxBodySize config.Size `yaml:"maxBodySize"`
	// DefaultOutputTokens is the output a request without a cap is
	// assumed to ask for when quotas are checked before the call; default
	// 1024, or the model's maxOutputTokens when lower.
	DefaultOutputTokens int `yaml:"defaultOutputTokens"`
}

// Provider is one model API and its credentials.
type Provider struct {
	// Name identifies the provider in routes, metrics and records.
	Name string `yaml:"name" config:"required"`
	// Type is the API it speaks: openai, openai-compatible (vLLM,
	// Ollama, llama.cpp, Mistral, Groq, DeepSeek, OpenRouter, ...),
	// azure, anthropic, gemini or bedrock.
	Type string `yaml:"type" config:"required"`
	// URL is the API's base: "https://api.openai.com" (relia adds
	// /v1/...), "https://api.anthropic.com", an Azure resource's
	// "https://NAME.openai.azure.com", "https://generativelanguage.googleapis.com",
	// "https://bedrock-runtime.us-east-1.amazonaws.com".
	URL string `yaml:"url" config:"required"`
	// Keys are the provider's credentials; calls rotate over them by
	// weight, each with its own breaker and Retry-After. At least one,
	// except for openai-compatible servers that need none.
	Keys []Credential `yaml:"keys"`
	// Region is the AWS region a bedrock provider signs for.
	Region string `yaml:"region"`
	// APIVersion is Azure's api-version query parameter (default
	// 2024-10-21) or Anthropic's anthropic-version header (default
	// 2023-06-01).
	APIVersion string `yaml:"apiVersion"`
	// Headers are added to every request to the provider.
	Headers map[string]string `yaml:"headers"`
	// Breaker trips a credential's breaker; defaults: 5 failures in a
	// row, open 30s.
	Breaker Breaker `yaml:"breaker"`
	// MaxConnections bounds the connections open at once to the
	// provider's address; calls beyond it wait for one. A stream holds
	// its connection until it ends, so this is also the most streams open
	// to the provider at once. Default 1024 (DefaultMaxConnections), at
	// most 1048576. Providers at one address share its connections, under
	// the largest of their bounds.
	MaxConnections int `yaml:"maxConnections"`
}

// DefaultMaxConnections is a provider's maxConnections when it sets
// none.
const DefaultMaxConnections = 1024

// maxMaxConnections bounds a provider's maxConnections.
const maxMaxConnections = 1 << 20

// Credential is one API key (or, for bedrock, one AWS access key).
type Credential struct {
	// Name identifies the key in metrics and records; default key-N.
	Name string `yaml:"name"`
	// Value is the key itself (for bedrock, the secret access key).
	// Set this or env.
	Value string `yaml:"value"`
	// Env names the environment variable holding the key, read when
	// the config is loaded.
	Env string `yaml:"env"`
	// AccessKeyID is a bedrock key's access key id.
	AccessKeyID string `yaml:"accessKeyID"`
	// SessionToken is a bedrock key's session token, if temporary.
	SessionToken string `yaml:"sessionToken"`
	// Weight is the key's share of calls; default 1.
	Weight int `yaml:"weight"`
}

// Breaker configures the breaker of each credential.
type Breaker struct {
	// ConsecutiveFailures trips the breaker after this many failed calls
	// in a row; default 5.
	ConsecutiveFailures int `yaml:"consecutiveFailures"`
	// OpenDuration is how long a tripped breaker refuses calls; default
	// 30s.
	OpenDuration time.Duration `yaml:"openDuration"`
}

// Route is how one public model is served.
type Route struct {
	// Model is the public model name or alias the route serves.
	Model string `yaml:"model" config:"required"`
	// Targets are the providers that serve it, chosen by weight for
	// each call (a canary is a target of small weight); the others are
	// tried next, in order, when the chosen one fails.
	Targets []Target `yaml:"targets" config:"required"`
	// Fallbacks are public models tried, in order, after every target
	// failed.
	Fallbacks []string `yaml:"fallbacks"`
	// ContextFallback is the public model (of a larger context window)
	// tried when a provider refuses the prompt as too long, or when the
	// prompt cannot fit this model's context window.
	ContextFallback string `yaml:"contextFallback"`
	// Timeouts bound each call.
	Timeouts Timeouts `yaml:"timeouts"`
	// MaxAttempts bounds the attempts of one call, fallbacks included;
	// default 3.
	MaxAttempts int `yaml:"maxAttempts"`
	// RetryBudget bounds the attempts after the first to a share of the
	// route's calls: ratio (default 0.2) plus minPerSecond (default 3).
	RetryBudget RetryBudget `yaml:"retryBudget"`
	// HedgeAfter, when set, sends a second attempt to the next target
	// when the first token has not come this long after the call began;
	// the first stream to produce a token wins. Off by default: a hedge
	// can double the tokens paid for.
	HedgeAfter time.Duration `yaml:"hedgeAfter"`
	// SLO drains a target whose error budget burns fast: while its burn
	// rate over the window is above maxBurnRate, it is tried only after
	// the healthy targets.
	SLO *RouteSLO `yaml:"slo"`
	// LogContent puts prompts and completions into the call records of
	// this route (capped and redacted by spec.logging). Off by default.
	LogContent bool `yaml:"logContent"`
}

// Target is one provider serving a route's model.
type Target struct {
	// Provider names a provider of spec.providers.
	Provider string `yaml:"provider" config:"required"`
	// Model is the model's id at the provider (an Azure deployment, a
	// Bedrock model id); default the catalog's id for the provider's type,
	// else the public name.
	Model string `yaml:"model"`
	// Weight is the target's share of first attempts; default 1.
	Weight int `yaml:"weight"`
}

// Timeouts bound a call to a model.
type Timeouts struct {
	// FirstToken bounds the wait for the first token (for the whole
	// answer, not streaming, it bounds the wait for the response head);
	// default 30s. A call past it fails over.
	FirstToken time.Duration `yaml:"firstToken"`
	// Idle bounds the wait between two tokens of a stream; default 30s.
	// A stream past it ends with an error event.
	Idle time.Duration `yaml:"idle"`
	// Total bounds the whole call; default 10m.
	Total time.Duration `yaml:"total"`
}

// RetryBudget bounds retries to a share of calls.
type RetryBudget struct {
	// Ratio is the share of the route's calls that attempts after the
	// first may add; default 0.2.
	Ratio float64 `yaml:"ratio"`
	// MinPerSecond is a floor of attempts after the first allowed per
	// second whatever the call rate; default 3.
	MinPerSecond float64 `yaml:"minPerSecond"`
}

// RouteSLO is the objective that drains a target burning its budget.
type RouteSLO struct {
	// Objective is the share of calls that must succeed, e.g. 99%.
	Objective config.Ratio `yaml:"objective" config:"required"`
	// Window is the span the burn rate is measured over; default 5m.
	Window time.Duration `yaml:"window"`
	// MaxBurnRate is the burn rate above which a target is drained;
	// default 14.4 (a 30-day budget gone in 2 days).
	MaxBurnRate float64 `yaml:"maxBurnRate"`
	// MinCalls is how many calls the window needs before it judges;
	// default 20.
	MinCalls int `yaml:"minCalls"`
}

// Tenant is one caller of the AI gateway.
type Tenant struct {
	// Name identifies the tenant in metrics, records and quota keys.
	Name string `yaml:"name" config:"required"`
	// Keys are the tenant's API keys, sent as a Bearer token (or
	// x-api-key); behind relia gateway, the gateway's own API keys and
	// JWT tenants name the tenant instead.
	Keys []Credential `yaml:"keys"`
	// Models are the public models and aliases the tenant may call;
	// empty means all.
	Models []string `yaml:"models"`
	// Prompts are the prompts the tenant may call; empty means all.
	Prompts []string `yaml:"prompts"`
	// Quotas bound the tenant's use.
	Quotas []Quota `yaml:"quotas"`
}

// Quota bounds a tenant's use, over all models or of one.
type Quota struct {
	// Model limits the quota to one public model; empty counts every
	// model.
	Model string `yaml:"model"`
	// PerKey counts each of the tenant's API keys on its own.
	PerKey bool `yaml:"perKey"`
	// TokensPerMinute bounds input plus output tokens in each minute.
	TokensPerMinute int64 `yaml:"tokensPerMinute"`
	// RequestsPerMinute bounds calls in each minute.
	RequestsPerMinute int64 `yaml:"requestsPerMinute"`
	// CostPerDay bounds spending per UTC day, in the catalog's currency
	// (USD).
	CostPerDay float64 `yaml:"costPerDay"`
	// CostPerMonth bounds spending per calendar month (UTC), in USD.
	CostPerMonth float64 `yaml:"costPerMonth"`
}

// QuotaStore says where quota counters live.
type QuotaStore struct {
	// Redis shares the counters between every gateway using it.
	Redis *RedisStore `yaml:"redis"`
}

// RedisStore is the Redis server holding shared quota counters.
type RedisStore struct {
	// Address is host:port of the Redis server.
	Address string `yaml:"address" config:"required"`
	// DB is the database number.
	DB int `yaml:"db"`
	// Timeout bounds each call to Redis; default 50ms.
	Timeout time.Duration `yaml:"timeout"`
	// OnUnreachable is what quotas answer while Redis does not: "open"
	// admits calls, "closed" refuses them with 503. Required.
	OnUnreachable string `yaml:"onUnreachable" config:"required"`
}

// Logging says what a call's record holds.
type Logging struct {
	// MaxContentBytes caps each prompt and completion logged by routes
	// with logContent; default 2KiB.
	MaxContentBytes config.Size `yaml:"maxContentBytes"`
	// Redact are regular expressions whose matches are replaced by
	// [REDACTED] in logged content (besides e-mail addresses and API-key
	// shaped strings, always redacted).
	Redact []string `yaml:"redact"`
}

// LoadFile reads and validates the AIGateway document in the file at
// path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading AI gateway config: %w", err)
	}
	return Parse(path, data)
}

// Parse reads the one AIGateway document in data; documents of other
// kinds are skipped. Its references to models are checked against the
// shipped catalog and the Models documents in the same data.
func Parse(name string, data []byte) (*Config, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	cat, err := catalogOf(docs)
	if err != nil {
		return nil, err
	}
	var found *Config
	for _, d := range docs {
		if d.Kind != Kind {
			continue
		}
		if found != nil {
			return nil, d.Errorf("kind", "a second %s document; a file holds one", Kind)
		}
		c := &Config{doc: d}
		if err := d.Decode(c); err != nil {
			return nil, err
		}
		if err := c.Validate(cat); err != nil {
			return nil, err
		}
		found = c
	}
	if found == nil {
		return nil, fmt.Errorf("%s: no document of kind %s", name, Kind)
	}
	return found, nil
}

func (c *Config) errorf(path, format string, args ...any) error {
	if c.doc.Node == nil {
		return fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	return c.doc.Errorf(path, format, args...)
}

// Validate checks what the strict decoder cannot: references between
// routes, providers and the catalog, and values out of range.
func (c *Config) Validate(cat *Catalog) error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, c.errorf(path, format, args...)) }
	s := &c.Spec
	providers := map[string]*Provider{}
	for i := range s.Providers {
		p := &s.Providers[i]
		at := fmt.Sprintf("spec.providers[%d]", i)
		if providers[p.Name] != nil {
			bad(at+".name", "duplicate provider %q", p.Name)
		}
		providers[p.Name] = p
		if !slices.Contains(providerTypes, p.Type) {
			bad(at+".type", "unknown provider type %q (want one of %v)", p.Type, providerTypes)
		}
		if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(at+".url", "%q is not an http(s) URL", p.URL)
		}
		if len(p.Keys) == 0 && p.Type != ProviderOpenAICompatible {
			bad(at+".keys", "a %s provider needs at least one key", p.Type)
		}
		if p.Type == ProviderBedrock && p.Region == "" {
			bad(at+".region", "a bedrock provider needs its AWS region")
		}
		for k, key := range p.Keys {
			kat := fmt.Sprintf("%s.keys[%d]", at, k)
			if (key.Value == "") == (key.Env == "") {
				bad(kat, "set exactly one of value and env")
			}
			if p.Type == ProviderBedrock && key.AccessKeyID == "" {
				bad(kat+".accessKeyID", "a bedrock key needs its access key id")
			}
			if key.Weight < 0 {
				bad(kat+".weight", "negative weight")
			}
		}
		if p.Breaker.ConsecutiveFailures < 0 {
			bad(at+".breaker.consecutiveFailures", "negative")
		}
		if p.MaxConnections < 0 || p.MaxConnections > maxMaxConnections {
			bad(at+".maxConnections", "%d is not in [1, %d] (0 means the default, %d)", p.MaxConnections, maxMaxConnections, DefaultMaxConnections)
		}
	}
	routes := map[string]bool{}
	for i := range s.Routes {
		r := &s.Routes[i]
		at := fmt.Sprintf("spec.routes[%d]", i)
		m, ok := cat.Lookup(r.Model)
		if !ok {
			bad(at+".model", "unknown model %q: not in the catalog (add it with a kind: Models document)", r.Model)
		} else if routes[m.Name] {
			bad(at+".model", "a second route for model %q", m.Name)
		} else {
			routes[m.Name] = true
		}
		for k, t := range r.Targets {
			if providers[t.Provider] == nil {
				bad(fmt.Sprintf("%s.targets[%d].provider", at, k), "unknown provider %q", t.Provider)
			}
			if t.Weight < 0 {
				bad(fmt.Sprintf("%s.targets[%d].weight", at, k), "negative weight")
			}
		}
		for k, f := range r.Fallbacks {
			if _, ok := cat.Lookup(f); !ok {
				bad(fmt.Sprintf("%s.fallbacks[%d]", at, k), "unknown model %q", f)
			}
		}
		if r.ContextFallback != "" {
			if _, ok := cat.Lookup(r.ContextFallback); !ok {
				bad(at+".contextFallback", "unknown model %q", r.ContextFallback)
			}
		}
		if r.MaxAttempts < 0 {
			bad(at+".maxAttempts", "negative")
		}
		if b := r.RetryBudget; b.Ratio < 0 || b.Ratio > 1 || b.MinPerSecond < 0 {
			bad(at+".retryBudget", "ratio must lie in [0, 1] and minPerSecond be non-negative")
		}
		if o := r.SLO; o != nil {
			if o.Objective <= 0 || o.Objective >= 1 {
				bad(at+".slo.objective", "%v is not in (0, 1)", float64(o.Objective))
			}
			if o.MaxBurnRate < 0 || o.MinCalls < 0 {
				bad(at+".slo", "negative maxBurnRate or minCalls")
			}
		}
	}
	for i := range s.Routes {
		r := &s.Routes[i]
		for k, f := range r.Fallbacks {
			if m, ok := cat.Lookup(f); ok && !routes[m.Name] {
				bad(fmt.Sprintf("spec.routes[%d].fallbacks[%d]", i, k), "model %q has no route", f)
			}
		}
		if m, ok := cat.Lookup(r.ContextFallback); ok && !routes[m.Name] {
			bad(fmt.Sprintf("spec.routes[%d].contextFallback", i), "model %q has no route", r.ContextFallback)
		}
	}
	tenants := map[string]bool{}
	keys := map[string]string{}
	for i := range s.Tenants {
		t := &s.Tenants[i]
		at := fmt.Sprintf("spec.tenants[%d]", i)
		if tenants[t.Name] {
			bad(at+".name", "duplicate tenant %q", t.Name)
		}
		tenants[t.Name] = true
		for k, key := range t.Keys {
			if (key.Value == "") == (key.Env == "") {
				bad(fmt.Sprintf("%s.keys[%d]", at, k), "set exactly one of value and env")
			}
			if key.Value != "" {
				if other, dup := keys[key.Value]; dup {
					bad(fmt.Sprintf("%s.keys[%d]", at, k), "key already given to tenant %q", other)
				}
				keys[key.Value] = t.Name
			}
		}
		for k, m := range t.Models {
			if _, ok := cat.Lookup(m); !ok {
				bad(fmt.Sprintf("%s.models[%d]", at, k), "unknown model %q", m)
			}
		}
		for k, q := range t.Quotas {
			qat := fmt.Sprintf("%s.quotas[%d]", at, k)
			if q.TokensPerMinute < 0 || q.RequestsPerMinute < 0 || q.CostPerDay < 0 || q.CostPerMonth < 0 {
				bad(qat, "negative limit")
			}
			if q.TokensPerMinute == 0 && q.RequestsPerMinute == 0 && q.CostPerDay == 0 && q.CostPerMonth == 0 {
				bad(qat, "a quota needs at least one of tokensPerMinute, requestsPerMinute, costPerDay, costPerMonth")
			}
			if q.Model != "" {
				if _, ok := cat.Lookup(q.Model); !ok {
					bad(qat+".model", "unknown model %q", q.Model)
				}
			}
		}
	}
	if r := s.QuotaStore.Redis; r != nil && r.OnUnreachable != "open" && r.OnUnreachable != "closed" {
		bad("spec.quotaStore.redis.onUnreachable", "%q: want open or closed", r.OnUnreachable)
	}
	for i, expr := range s.Logging.Redact {
		if _, err := regexp.Compile(expr); err != nil {
			bad(fmt.Sprintf("spec.logging.redact[%d]", i), "%v", err)
		}
	}
	if s.DefaultOutputTokens < 0 {
		bad("spec.defaultOutputTokens", "negative")
	}
	return errors.Join(errs...)
}

// secret returns a credential's key: its value or its environment
// variable's.
func (k Credential) secret() (string, error) {
	if k.Env != "" {
		v, ok := os.LookupEnv(k.Env)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", k.Env)
		}
		return v, nil
	}
	return k.Value, nil
}

// JSONSchema returns the JSON Schema of the AIGateway kind.
func JSONSchema() ([]byte, error) { return config.Schema(Kind, Config{}) }
