// Package ai is relia's AI gateway: one OpenAI-compatible API over many
// model providers, with failover, token and cost quotas, prompts served
// as APIs and GenAI telemetry.
//
// Clients speak OpenAI's API (POST /v1/chat/completions, streaming or
// not, /v1/embeddings, GET /v1/models, and POST /v1/responses for text)
// or Anthropic's (POST /v1/messages); relia translates each call for the provider a route
// chooses: OpenAI, Azure OpenAI, Anthropic, Gemini, AWS Bedrock Converse
// (signed with Signature V4) or any OpenAI-compatible server. When
// client and provider speak the same format, fields relia does not know
// pass through in both directions. Calls to providers go over the
// gateway's HTTP/1.1 client (gateway/upstream, every answer framed by
// internal/h1) unless Options.Transport says otherwise; https providers
// over TLS through net/http's transport.
//
//	b, err := ai.LoadFiles("ai-gateway.yaml") // AIGateway, Models and Prompt documents
//	if err != nil { ... }                      // ai-gateway.yaml:12:7: spec.routes[0].model: unknown model "gpt-5-ultra"
//	svc, err := ai.New(b.Config, b.Catalog, ai.Options{
//		Registry:  prometheus.NewRegistry(), // gen_ai_* metrics
//		Logger:    slog.Default(),           // one record per call
//		Prompts:   b.Prompts,
//	})
//	http.Handle("/", svc)
//
// relia gateway serves a Service on its own edge instead: a route with
// `ai:` naming the AIGateway document of the gateway's file (package
// gateway, ai.go), the gateway's tenants passed in with WithCaller and
// each call's Record taken back with WithRecordHook.
//
// # Configuration
//
// A `kind: Models` document is the model catalog: public names and
// aliases, context windows, prices per million input, output and cached
// tokens. relia ships common models (ShippedCatalog); a user's Models
// documents add to it or replace entries. A `kind: AIGateway` document
// names the providers and their credentials, one route per public model
// (weighted targets, fallback models, a context fallback, timeouts to
// the first token, between tokens and in all, a retry budget, an opt-in
// hedge, an SLO that drains a target burning its budget), the tenants
// and their quotas. `kind: Prompt` documents are prompts served as APIs.
//
// # Failover
//
// A call tries the route's targets (the first chosen by weight), then its
// fallback models', each on a credential of the provider that is not
// waiting out a Retry-After and whose breaker admits it. A 429 rests the
// credential for the Retry-After it came with, an overload (529, 503)
// the whole provider; a 5xx, a timeout or a broken connection moves on;
// a prompt too long for the model moves to the context fallback; a
// client error ends the call. Attempts after the first spend the route's
// retry budget (resilience.RetryBudget), breakers are
// resilience.Breakers per credential, and the hedge is resilience.Hedge.
//
// A stream fails over only until its first token: the client gets no
// byte before then. After it, a failure (an error event, a broken
// connection, a stall past the idle timeout) ends the client's stream
// with an error event in its API's format, and the call is recorded as
// failed mid-stream, never retried: the text sent cannot be unsent.
//
// # Quotas and telemetry
//
// Tenants' quotas (tokens and requests per minute, cost per day and per
// month; for the tenant, per key or per model) count in fixed UTC
// windows, in memory or shared through Redis; a call is admitted on its
// prompt's estimate and charged the provider's reported usage. Metrics
// follow the OpenTelemetry GenAI semantic conventions
// (gen_ai_client_token_usage, gen_ai_client_operation_duration_seconds,
// gen_ai_server_time_to_first_token_seconds,
// gen_ai_server_time_per_output_token_seconds) with tenant, provider and
// outcome labels; every call is one Record with its tokens, cost, time to
// first token and fallback path.
package ai
