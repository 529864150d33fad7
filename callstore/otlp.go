package callstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	"go.opentelemetry.io/otel/trace"

	"github.com/relia-dev/relia/clock"
)

// OTLPOptions configure an OTLPSink.
type OTLPOptions struct {
	// Endpoint is the collector's logs URL
	// ("http://127.0.0.1:4318/v1/logs"). Empty means the standard
	// OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT
	// variables (and OTEL_EXPORTER_OTLP_HEADERS and the rest), as the
	// OpenTelemetry SDKs read them.
	Endpoint string
	// Timeout bounds one export; 10s by default.
	Timeout time.Duration
	// Resource describes the process; nil is service.name "relia" merged
	// with OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME.
	Resource *resource.Resource
	// Clock gives the records' observed time; nil is the real clock.
	Clock clock.Clock
}

// OTLPSink exports call records as OpenTelemetry log records over
// OTLP/HTTP, for users who keep logs in their own pipeline (a collector,
// Loki, Elasticsearch). It is a Sink: run it behind a Writer of its own,
// which batches, retries and spools; Write exports the whole batch in one
// request and returns the collector's refusal as an error, so nothing is
// dropped unseen.
//
// Attributes follow OpenTelemetry's HTTP semantic conventions
// (http.request.method, http.route, url.path, http.response.status_code)
// and, for AI calls, the GenAI ones (gen_ai.request.model,
// gen_ai.usage.input_tokens); relia's own fields carry the relia. prefix.
// The record's trace id is the call's, so a log backend links it to the
// trace.
type OTLPSink struct {
	clock    clock.Clock
	provider *sdklog.LoggerProvider
	logger   log.Logger
	exporter sdklog.Exporter
	proc     *collector

	mu sync.Mutex // one Write at a time: proc's batch is shared
}

// NewOTLPSink sets up the exporter; it connects on the first Write.
func NewOTLPSink(ctx context.Context, o OTLPOptions) (*OTLPSink, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	opts := []otlploghttp.Option{
		otlploghttp.WithTimeout(o.Timeout),
		// The Writer retries, with its spool behind it.
		otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	}
	if o.Endpoint != "" {
		opts = append(opts, otlploghttp.WithEndpointURL(o.Endpoint))
	}
	exp, err := otlploghttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("setting up the OTLP log exporter: %w", err)
	}
	res := o.Resource
	if res == nil {
		res, err = resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "relia")))
		if err == nil {
			res, err = resource.Merge(res, resource.Environment())
		}
		if err != nil {
			res = resource.Default()
		}
	}
	proc := &collector{}
	provider := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(proc))
	return &OTLPSink{
		clock:    clock.OrReal(o.Clock),
		provider: provider,
		logger:   provider.Logger("github.com/relia-dev/relia/callstore"),
		exporter: exp,
		proc:     proc,
	}, nil
}

// collector is a log processor that keeps what is emitted until the
// sink exports it: the SDK stamps each record with the resource and
// scope, and the sink decides when to send and sees the outcome.
type collector struct {
	recs []sdklog.Record
}

func (c *collector) Enabled(context.Context, sdklog.EnabledParameters) bool { return true }
func (c *collector) OnEmit(_ context.Context, r *sdklog.Record) error {
	c.recs = append(c.recs, r.Clone())
	return nil
}
func (c *collector) Shutdown(context.Context) error   { return nil }
func (c *collector) ForceFlush(context.Context) error { return nil }

// Write exports the batch as one OTLP request.
func (s *OTLPSink) Write(ctx context.Context, recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.recs = s.proc.recs[:0]
	now := s.clock.Now()
	for i := range recs {
		r := &recs[i]
		ectx := ctx
		if tid, err := hex.DecodeString(r.TraceID); err == nil && len(tid) == 16 {
			sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID(tid), Remote: true})
			ectx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
		s.logger.Emit(ectx, logRecord(r, now))
	}
	if err := s.exporter.Export(ctx, s.proc.recs); err != nil {
		return fmt.Errorf("exporting %d calls over OTLP: %w", len(recs), err)
	}
	return nil
}

// Close shuts the exporter down.
func (s *OTLPSink) Close(ctx context.Context) error {
	return errNil(s.exporter.Shutdown(ctx), s.provider.Shutdown(ctx))
}

func errNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// logRecord is r as an OpenTelemetry log record.
func logRecord(r *Record, now time.Time) log.Record {
	var lr log.Record
	lr.SetEventName("relia.call")
	lr.SetTimestamp(r.Time)
	lr.SetObservedTimestamp(now)
	sev, text := log.SeverityInfo, "INFO"
	switch {
	case r.Failed():
		sev, text = log.SeverityError, "ERROR"
	case r.Status >= 400:
		sev, text = log.SeverityWarn, "WARN"
	}
	lr.SetSeverity(sev)
	lr.SetSeverityText(text)
	lr.SetBody(attribute.StringValue(fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status)))
	attrs := []attribute.KeyValue{
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", r.Path),
		attribute.Int("http.response.status_code", r.Status),
		attribute.String("relia.request_id", r.RequestID),
		attribute.String("relia.outcome", r.Outcome),
		attribute.Float64("relia.latency_ms", float64(r.Latency)/float64(time.Millisecond)),
		attribute.Float64("relia.upstream_latency_ms", float64(r.Upstream)/float64(time.Millisecond)),
		attribute.Float64("relia.ttfb_ms", float64(r.TTFB)/float64(time.Millisecond)),
		attribute.Int("relia.attempts", r.Attempts),
		attribute.Int64("http.request.body.size", r.BytesIn),
		attribute.Int64("http.response.body.size", r.BytesOut),
	}
	for _, kv := range [...]struct{ k, v string }{
		{"http.route", r.PathTemplate}, {"relia.route", r.Route}, {"relia.api", r.API}, {"relia.api_version", r.APIVersion},
		{"relia.tenant", r.Tenant}, {"relia.key_id", r.KeyID}, {"relia.reason", r.Reason}, {"relia.target", r.Target},
		{"relia.gateway", r.Gateway}, {"gen_ai.request.model", r.Model}, {"gen_ai.provider.name", r.Provider},
	} {
		if kv.v != "" {
			attrs = append(attrs, attribute.String(kv.k, kv.v))
		}
	}
	if r.Model != "" {
		attrs = append(attrs,
			attribute.Int64("gen_ai.usage.input_tokens", r.InputTokens),
			attribute.Int64("gen_ai.usage.output_tokens", r.OutputTokens),
			attribute.Float64("relia.cost_usd", r.Cost))
	}
	lr.AddAttributes(attrs...)
	return lr
}
