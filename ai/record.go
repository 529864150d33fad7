package ai

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/relia-dev/relia/ai/wire"
)

// Outcomes of a call, as records and the outcome metric label name them.
const (
	OutcomeOK              = "ok"
	OutcomeError           = "error"
	OutcomeRejected        = "rejected" // refused by relia: access, quota
	OutcomeFailedMidStream = "failed_mid_stream"
	OutcomeCancelled       = "cancelled"
)

// Record is one call to the AI gateway, as the access log and the call
// store keep it. Prompts and completions are in it only when the route
// opts in (logContent), capped and redacted.
type Record struct {
	Time      time.Time `json:"time"`
	Operation string    `json:"operation"` // chat, embeddings, prompt
	// Model is the public model; Provider and ProviderModel what served
	// the call (the last attempt's).
	Model         string `json:"model"`
	Provider      string `json:"provider,omitempty"`
	ProviderModel string `json:"provider_model,omitempty"`
	Credential    string `json:"credential,omitempty"`
	Tenant        string `json:"tenant"`
	Key           string `json:"key,omitempty"`
	Prompt        string `json:"prompt_name,omitempty"`
	Stream        bool   `json:"stream"`
	Status        int    `json:"status"`
	Outcome       string `json:"outcome"`
	Reason        string `json:"reason,omitempty"`
	InputTokens   int    `json:"input_tokens"`
	OutputTokens  int    `json:"output_tokens"`
	CachedTokens  int    `json:"cached_tokens,omitempty"`
	// Cost is in USD, from the catalog's prices.
	Cost     float64       `json:"cost"`
	TTFT     time.Duration `json:"-"`
	TPOT     time.Duration `json:"-"`
	Duration time.Duration `json:"-"`
	// TTFTSeconds, TPOTSeconds and DurationSeconds are the record's times
	// as the JSON log writes them.
	TTFTSeconds     float64 `json:"ttft_seconds"`
	TPOTSeconds     float64 `json:"time_per_output_token_seconds,omitempty"`
	DurationSeconds float64 `json:"duration_seconds"`
	Attempts        int     `json:"attempts"`
	// Path is the attempts in order, "provider/model:result".
	Path       []string `json:"path,omitempty"`
	PromptText string   `json:"prompt,omitempty"`
	Completion string   `json:"completion,omitempty"`

	usage   Usage
	content *contentLog
	// trace is the call's span and its context, once a tracer provider
	// is set (nil before: an open stream holds two words the less).
	trace *recordTrace
	ptype string
	hook  func(*Record)
	// unrouted: the call named a model no route serves, so Model is
	// whatever the client sent and must not become a metric label.
	unrouted bool
}

// recordTrace is a call's span and the context that carries it.
type recordTrace struct {
	ctx  context.Context
	span trace.Span
}

// span is the call's span, noSpan when it has none.
func (r *Record) span() trace.Span {
	if r.trace == nil {
		return noSpan
	}
	return r.trace.span
}

// contentLog holds a call's text for a route that logs it.
type contentLog struct{ prompt, completion string }

func (s *Service) newRecord(op string, c *caller, model string, stream bool) *Record {
	r := &Record{Time: s.clock.Now(), Operation: op, Model: model, Tenant: c.tenantName(), Key: c.key, Stream: stream, Outcome: OutcomeError, hook: c.hook}
	// Until a tracer provider is set, calls make no span at all; once
	// one is, the span gets its name and attributes when it records.
	if otel.GetTracerProvider() == unsetTracing {
		return r
	}
	t := new(recordTrace)
	t.ctx, t.span = tracer.Start(context.Background(), op, clientSpan...)
	r.trace = t
	if t.span.IsRecording() {
		t.span.SetName(op + " " + model)
		t.span.SetAttributes(attribute.String("gen_ai.operation.name", op), attribute.String("gen_ai.request.model", model))
	}
	return r
}

// clientSpan are the options every call's span starts with.
var clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// unsetTracing is the global tracer provider before one is set, and
// noSpan the span of calls made meanwhile (it records nothing).
var (
	unsetTracing = otel.GetTracerProvider()
	noSpan       = trace.SpanFromContext(context.Background())
)

func (r *Record) fail(e *apiError) {
	r.Status = e.status
	r.Reason = e.reason
	if r.Reason == "" {
		r.Reason = e.code
	}
	switch e.status {
	case 401, 403, 404, 429, 413:
		if e.reason != "upstream_rate_limited" && e.code != "upstream_rate_limited" {
			r.Outcome = OutcomeRejected
			return
		}
	}
	r.Outcome = OutcomeError
}

func (r *Record) target(t *target) {
	r.Provider, r.ProviderModel, r.Credential, r.ptype = t.prov.cfg.Name, t.model, t.cred.name, t.prov.cfg.Type
}

func (r *Record) setCost(m *Model) {
	r.InputTokens, r.OutputTokens, r.CachedTokens = r.usage.InputTokens, r.usage.OutputTokens, r.usage.CachedTokens
	r.Cost = m.Price.Cost(r.usage)
}

// semconvProvider is the OpenTelemetry gen_ai.provider.name of a
// provider type.
func semconvProvider(typ string) string {
	switch typ {
	case ProviderOpenAI:
		return "openai"
	case ProviderAzure:
		return "azure.ai.openai"
	case ProviderAnthropic:
		return "anthropic"
	case ProviderGemini:
		return "gcp.gemini"
	case ProviderBedrock:
		return "aws.bedrock"
	case "":
		return "none"
	}
	return "openai_compatible"
}

// tracer starts the calls' spans. The global provider's tracer hands
// its spans to the provider set after it, so one lookup serves every
// call.
var tracer = otel.Tracer("github.com/relia-dev/relia/ai")

// finish ends a call: its metrics, span, log line and record hook.
func (s *Service) finish(r *Record) {
	r.Duration = s.clock.Since(r.Time)
	r.TTFTSeconds, r.TPOTSeconds, r.DurationSeconds = r.TTFT.Seconds(), r.TPOT.Seconds(), r.Duration.Seconds()
	st := s.state.Load()
	if r.content != nil {
		redact := st.redactor()
		r.PromptText = redact(r.content.prompt)
		r.Completion = redact(r.content.completion)
	}
	s.metrics.observe(r)
	sp := r.span()
	if sp.IsRecording() {
		setSpanAttributes(sp, r)
	}
	sp.End()
	if s.logger != nil {
		attrs := []slog.Attr{
			slog.String("operation", r.Operation), slog.String("model", r.Model), slog.String("provider", r.Provider),
			slog.String("provider_model", r.ProviderModel), slog.String("tenant", r.Tenant), slog.Bool("stream", r.Stream),
			slog.Int("status", r.Status), slog.String("outcome", r.Outcome), slog.String("reason", r.Reason),
			slog.Int("input_tokens", r.InputTokens), slog.Int("output_tokens", r.OutputTokens), slog.Float64("cost", r.Cost),
			slog.Float64("ttft_seconds", r.TTFTSeconds), slog.Float64("duration_seconds", r.DurationSeconds),
			slog.Int("attempts", r.Attempts), slog.Any("path", r.Path),
		}
		if r.content != nil {
			attrs = append(attrs, slog.String("prompt", r.PromptText), slog.String("completion", r.Completion))
		}
		ctx := context.Background()
		if r.trace != nil {
			ctx = r.trace.ctx
		}
		s.logger.LogAttrs(ctx, slog.LevelInfo, "ai call", attrs...)
	}
	if s.onRecord != nil {
		s.onRecord(*r)
	}
	if r.hook != nil {
		r.hook(r)
	}
}

// setSpanAttributes gives a call's span what the call's record says: only
// a span that records is worth the attributes.
func setSpanAttributes(sp trace.Span, r *Record) {
	sp.SetAttributes(
		attribute.String("gen_ai.provider.name", semconvProvider(r.ptype)),
		attribute.String("gen_ai.response.model", r.ProviderModel),
		attribute.Int("gen_ai.usage.input_tokens", r.InputTokens),
		attribute.Int("gen_ai.usage.output_tokens", r.OutputTokens),
		attribute.String("relia.tenant", r.Tenant),
		attribute.String("relia.outcome", r.Outcome),
		attribute.Float64("relia.cost_usd", r.Cost),
		attribute.StringSlice("relia.path", r.Path),
	)
	if r.Outcome != OutcomeOK {
		sp.SetAttributes(attribute.String("error.type", orDefault(r.Reason, r.Outcome)))
		sp.SetStatus(codes.Error, r.Outcome)
	}
}

// promptText is a chat's messages as one text, for records that keep
// prompts.
func promptText(req *wire.ChatRequest) string {
	var b strings.Builder
	for i := range req.Messages {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(req.Messages[i].Role)
		b.WriteString(": ")
		b.WriteString(req.Messages[i].Text())
	}
	return b.String()
}

// Content always redacted when logged: e-mail addresses and strings
// shaped like API keys and bearer tokens.
var builtinRedactions = []*regexp.Regexp{
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
	regexp.MustCompile(`\b(sk|pk|rk|ak)-[A-Za-z0-9_-]{8,}`),
	regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/-]+=*`),
}

// redactor returns the function that redacts and caps logged content.
func (st *state) redactor() func(string) string {
	limit := int(st.cfg.Spec.Logging.MaxContentBytes)
	if limit == 0 {
		limit = 2048
	}
	extra := make([]*regexp.Regexp, 0, len(st.cfg.Spec.Logging.Redact))
	for _, e := range st.cfg.Spec.Logging.Redact {
		extra = append(extra, regexp.MustCompile(e)) // validated
	}
	return func(s string) string {
		for _, re := range builtinRedactions {
			s = re.ReplaceAllString(s, "[REDACTED]")
		}
		for _, re := range extra {
			s = re.ReplaceAllString(s, "[REDACTED]")
		}
		if len(s) > limit {
			cut := limit
			for cut > 0 && !utf8.RuneStart(s[cut]) {
				cut--
			}
			s = s[:cut] + "…[truncated]"
		}
		return s
	}
}
