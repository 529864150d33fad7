package gateway

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/relia-dev/relia/internal/h1"
)

// tracerName is the instrumentation scope of the gateway's spans.
const tracerName = "github.com/relia-dev/relia/gateway"

// DefaultServiceName is the service.name of the gateway's spans when
// OTEL_SERVICE_NAME does not give one.
const DefaultServiceName = "relia-gateway"

// tracing is the gateway's OpenTelemetry tracer. A gateway without one
// (no OTEL_* exporter configured and no Options.TracerProvider) has a nil
// *tracing and spends nothing on spans: the trace context is then still
// continued and logged, by the gateway's own few lines.
type tracing struct {
	tracer   trace.Tracer
	shutdown func(context.Context) error // flushes an exporter the gateway made
}

// tracesFromEnv reports whether the standard OTEL_* variables ask for
// traces: an OTLP endpoint, or OTEL_TRACES_EXPORTER=otlp; "none", or
// OTEL_SDK_DISABLED=true, turns them off.
func tracesFromEnv() bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// The OTLP transports the gateway exports over, as the standard
// OTEL_EXPORTER_OTLP_PROTOCOL names them. http/json is the one the spec
// lists that the Go SDK has no exporter for.
const (
	protocolGRPC         = "grpc"
	protocolHTTPProtobuf = "http/protobuf"
)

// traceProtocolFromEnv picks the OTLP transport for traces as every
// OpenTelemetry SDK does: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. A value the gateway
// cannot export over is an error naming the variable it came from, so a
// typo fails at start-up rather than silently sending nothing.
func traceProtocolFromEnv() (string, error) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		switch p := os.Getenv(k); p {
		case "": // unset or empty: the next variable decides
		case protocolGRPC, protocolHTTPProtobuf:
			return p, nil
		default:
			return "", fmt.Errorf("%s %q: the gateway exports traces over %q or %q only", k, p, protocolGRPC, protocolHTTPProtobuf)
		}
	}
	return protocolHTTPProtobuf, nil
}

// newTracing sets up tracing: the caller's provider when Options has one,
// else an OTLP exporter (gRPC or HTTP/protobuf, as the protocol variables
// say) configured by the OTEL_* variables when they ask for traces, else
// none.
func newTracing(o Options) (*tracing, error) {
	if o.TracerProvider != nil {
		return &tracing{tracer: o.TracerProvider.Tracer(tracerName)}, nil
	}
	if !tracesFromEnv() {
		return nil, nil
	}
	proto, err := traceProtocolFromEnv()
	if err != nil {
		return nil, fmt.Errorf("setting up traces: %w", err)
	}
	// Both exporters read OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _HEADERS,
	// _TIMEOUT, _INSECURE and the rest themselves; passing no options
	// keeps the environment in charge. Neither dials here: a collector
	// that is down costs dropped spans, not a gateway that cannot start.
	var exp sdktrace.SpanExporter
	if proto == protocolGRPC {
		exp, err = otlptracegrpc.New(context.Background())
	} else {
		exp, err = otlptracehttp.New(context.Background())
	}
	if err != nil {
		return nil, fmt.Errorf("setting up the OTLP (%s) trace exporter: %w", proto, err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", DefaultServiceName)))
	if err == nil {
		// The environment's service name and attributes win over ours.
		res, err = resource.Merge(res, resource.Environment())
	}
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return &tracing{tracer: tp.Tracer(tracerName), shutdown: tp.Shutdown}, nil
}

// startServerSpan opens the request's server span, continuing the trace
// of the client's traceparent, and points the traceparent sent upstream
// at it.
func (tr *tracing) startServerSpan(x *exchange) {
	pctx := context.Background()
	if x.hasParent {
		pctx = trace.ContextWithRemoteSpanContext(pctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID(x.traceID), SpanID: trace.SpanID(x.parentID), TraceFlags: trace.TraceFlags(x.sampled), Remote: true,
		}))
	}
	method := methodName(x.req.method)
	name := method
	if x.route != nil {
		name = method + " " + x.route.name
	}
	sctx, span := tr.tracer.Start(pctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(x.start),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("url.path", string(x.path)),
			attribute.String("url.scheme", x.scheme()),
			attribute.String("client.address", x.client.String()),
			attribute.String("http.request.header.x-request-id", string(x.rid)),
		))
	x.traceCtx, x.span = sctx, span
	sc := span.SpanContext()
	x.setTraceID([16]byte(sc.TraceID()))
	x.spanID = [8]byte(sc.SpanID())
	x.sampled = byte(sc.TraceFlags() & trace.FlagsSampled)
	x.setTraceparent(&x.req.fields, x.spanID)
}

// endServerSpan closes the server span with the request's outcome.
func (x *exchange) endServerSpan(route string, end time.Time) {
	span := x.span
	if x.route != nil {
		span.SetAttributes(attribute.String("http.route", route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", x.status))
	if x.tenant != "" {
		span.SetAttributes(attribute.String("relia.tenant", x.tenant))
	}
	if x.reason != "" {
		span.SetAttributes(attribute.String("relia.reason", x.reason), attribute.String("relia.policy", x.policy))
	}
	if x.status >= 500 {
		span.SetStatus(codes.Error, "")
		span.SetAttributes(attribute.String("error.type", strconv.Itoa(x.status)))
	}
	span.End(trace.WithTimestamp(end))
}

// startClientSpan opens the span of one upstream attempt, a child of the
// server span, and sends its context upstream in req's traceparent.
func (tr *tracing) startClientSpan(x *exchange, t *target, fields *[]h1.Header, start time.Time) trace.Span {
	host, port, _ := net.SplitHostPort(t.addr)
	p, _ := strconv.Atoi(port)
	method := methodName(x.req.method)
	_, span := tr.tracer.Start(x.traceCtx, method, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
		trace.WithAttributes(
			attribute.String("http.request.method", method),
			attribute.String("server.address", host),
			attribute.Int("server.port", p),
			attribute.String("url.full", "http://"+t.addr+string(x.utarget)),
			attribute.Int("http.request.resend_count", x.attempts-1),
		))
	if fields == &x.ureq.Fields {
		x.setTraceparent(fields, [8]byte(span.SpanContext().SpanID()))
	} else {
		// A hedge's own fields: its traceparent outlives x.tt's next use.
		b := make([]byte, 0, len(traceText{}.parent))
		*fields = setField(*fields, "Traceparent", x.appendTraceparent(b, [8]byte(span.SpanContext().SpanID())))
	}
	return span
}

// endClientSpan closes an attempt's span with its answer or failure.
func endClientSpan(span trace.Span, status int, err error, end time.Time) {
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", errorType(err)))
	} else {
		span.SetAttributes(attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, "")
			span.SetAttributes(attribute.String("error.type", strconv.Itoa(status)))
		}
	}
	span.End(trace.WithTimestamp(end))
}

func errorType(err error) string {
	if k := classifyErr(err); k != errNone {
		if err == context.Canceled {
			return "cancelled"
		}
		return k.String()
	}
	return "_OTHER"
}

// setTraceID sets the request's trace id.
func (x *exchange) setTraceID(id [16]byte) { x.traceID = id }

// traceText is an exchange's trace id in hex, which the traceparent, the
// access log and the call record each write (encoded once a request, not
// once a writer), and the traceparent's own text.
type traceText struct {
	of     [16]byte // the trace id hex is the encoding of
	hex    [32]byte
	parent [55]byte
}

// traceIDHex returns the trace id in hex, all zeros for a request that
// never got one (refused before it was identified).
func (x *exchange) traceIDHex() []byte {
	t := x.tt
	if t == nil {
		t = new(traceText)
		x.tt = t
		hex.Encode(t.hex[:], t.of[:])
	}
	if t.of != x.traceID {
		t.of = x.traceID
		hex.Encode(t.hex[:], t.of[:])
	}
	return t.hex[:]
}

// setTraceparent writes the W3C traceparent naming span as the parent of
// what the upstream does.
func (x *exchange) setTraceparent(fields *[]h1.Header, span [8]byte) {
	// Not x.buf: a hash balancer's key may live there across attempts.
	x.traceIDHex() // makes x.tt
	*fields = setField(*fields, "Traceparent", x.appendTraceparent(x.tt.parent[:0], span))
}

func (x *exchange) appendTraceparent(b []byte, span [8]byte) []byte {
	b = append(b, "00-"...)
	b = append(b, x.traceIDHex()...)
	b = append(b, '-')
	b = hex.AppendEncode(b, span[:])
	return append(b, '-', '0', '0'+x.sampled)
}
