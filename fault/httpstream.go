package fault

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"time"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
)

// The stream faults (slow first byte, throttled events, stall, truncation
// and error events after N events) act on the upstream's answer while it
// passes. The handler behind the filter (the proxy's forwarder) writes
// into a pipe from a goroutine of its own; the request's goroutine reads
// the answer's events from the pipe with ai/wire's SSE reader, whose
// memory follows the bytes received, and writes them on as the fault
// says. Stopping early closes the pipe, which ends the forwarder's copy
// and its upstream connection.

// Error formats: the model providers whose error bodies and error events
// an http fault can imitate.
const (
	FormatOpenAI    = "openai"
	FormatAnthropic = "anthropic"
)

// maxEventsPerSecond bounds events_per_second, far above any stream.
const maxEventsPerSecond = 1e6

// streams reports whether f acts on the upstream's answer as it passes.
func (f *HTTPFault) streams() bool {
	return f.FirstByteDelay > 0 || f.EventsPerSecond > 0 || f.StallAfterEvents != nil ||
		f.TruncateAfterEvents != nil || f.ErrorAfterEvents != nil
}

func (f *HTTPFault) validateStream() error {
	var errs []error
	switch f.ErrorFormat {
	case "", FormatOpenAI, FormatAnthropic:
	default:
		errs = append(errs, fmt.Errorf("error_format must be %s or %s, got %q", FormatOpenAI, FormatAnthropic, f.ErrorFormat))
	}
	if f.ErrorType != "" && f.ErrorFormat == "" {
		errs = append(errs, errors.New("error_type needs error_format"))
	}
	if f.ErrorAfterEvents != nil && f.ErrorFormat == "" {
		errs = append(errs, errors.New("error_after_events needs error_format, the provider whose error event to send"))
	}
	if f.ErrorFormat != "" && f.AbortStatus == 0 && f.ErrorAfterEvents == nil {
		errs = append(errs, errors.New("error_format shapes the answer of abort_status or the event of error_after_events; give one"))
	}
	if math.IsNaN(f.EventsPerSecond) || f.EventsPerSecond < 0 || f.EventsPerSecond > maxEventsPerSecond {
		errs = append(errs, fmt.Errorf("events_per_second must be within [0, %g], got %v", maxEventsPerSecond, f.EventsPerSecond))
	}
	ends := 0
	for _, a := range []struct {
		name string
		v    *int64
	}{{"stall_after_events", f.StallAfterEvents}, {"truncate_after_events", f.TruncateAfterEvents}, {"error_after_events", f.ErrorAfterEvents}} {
		if a.v != nil {
			ends++
			errs = append(errs, nonNegative(a.name, *a.v))
		}
	}
	if ends > 1 {
		errs = append(errs, errors.New("stall_after_events, truncate_after_events and error_after_events each end a stream; give one"))
	}
	if f.streams() && (f.AbortStatus != 0 || f.GRPCStatus != "") {
		errs = append(errs, errors.New("abort_status and grpc_status answer in place of the upstream; the stream faults act on its answer, so they cannot go together"))
	}
	return errors.Join(append(errs, millis("first_byte_delay", f.FirstByteDelay))...)
}

// errStreamFault closes the pipe when a fault stops passing the answer.
var errStreamFault = errors.New("fault: the stream was stopped by a fault")

// errUpstreamCut closes the pipe when the forwarder's answer broke off.
var errUpstreamCut = errors.New("fault: the upstream's answer broke off")

// pipeWriter is the http.ResponseWriter the handler behind a stream fault
// writes to, from its own goroutine: the head goes over a channel, the
// body through a pipe.
type pipeWriter struct {
	header http.Header
	head   chan int // the status, once
	sent   bool
	pw     *io.PipeWriter
}

func (p *pipeWriter) Header() http.Header { return p.header }

func (p *pipeWriter) WriteHeader(status int) {
	if !p.sent {
		p.sent = true
		p.head <- status
	}
}

func (p *pipeWriter) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return p.pw.Write(b)
}

// Flush does nothing: the reading side flushes what it writes on.
func (p *pipeWriter) Flush() {}

// streamFault passes next's answer to w through s's stream faults.
func (f *HTTPFilter) streamFault(w http.ResponseWriter, r *http.Request, next http.Handler, s *ruleState) {
	ft := &s.rule.Fault
	pr, pw := io.Pipe()
	up := &pipeWriter{header: http.Header{}, head: make(chan int, 1), pw: pw}
	done := make(chan struct{})
	var panicked any
	// The forwarder's goroutine ends when next returns: at the end of the
	// answer, or at its first write after stop closes the pipe.
	go func() {
		defer close(done)
		defer func() {
			if v := recover(); v != nil {
				if v != http.ErrAbortHandler {
					panicked = v
				}
				pw.CloseWithError(errUpstreamCut)
			}
		}()
		next.ServeHTTP(up, r)
		up.WriteHeader(http.StatusOK)
		pw.Close()
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			pr.CloseWithError(errStreamFault)
			<-done
			if panicked != nil {
				panic(panicked)
			}
		}
	}
	defer stop()

	var status int
	select {
	case status = <-up.head:
	case <-done:
		select {
		case status = <-up.head:
		default:
			stop()
			panic(http.ErrAbortHandler) // no answer to pass on
		}
	}
	h := w.Header()
	for k, vs := range up.header {
		if _, set := h[k]; !set || !setByFault(ft, k) {
			h[k] = vs
		}
	}
	mediaType, _, _ := mime.ParseMediaType(up.header.Get("Content-Type"))
	// An encoded (compressed) stream passes as it comes: its events are
	// not in its bytes.
	events := status == http.StatusOK && mediaType == "text/event-stream" && up.header.Get("Content-Encoding") == ""
	if events {
		h.Del("Content-Length") // the events are written out again
	}
	if ft.FirstByteDelay > 0 {
		if err := clock.Sleep(r.Context(), f.clock, ms(ft.FirstByteDelay)); err != nil {
			stop()
			panic(http.ErrAbortHandler) // the client left
		}
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	if !events {
		_, err := io.CopyBuffer(flushWriter{w, rc}, pr, make([]byte, 16<<10))
		if err != nil {
			stop()
			panic(http.ErrAbortHandler) // a cut answer must reach the client cut
		}
		return
	}
	rc.Flush()
	f.passEvents(w, rc, r, pr, s, stop)
}

// setByFault reports whether the fault's set_headers names header k.
func setByFault(ft *HTTPFault, k string) bool {
	for name := range ft.SetHeaders {
		if http.CanonicalHeaderKey(name) == http.CanonicalHeaderKey(k) {
			return true
		}
	}
	return false
}

// flushWriter flushes after every write, so a streamed answer passes as
// it comes.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.rc.Flush()
	return n, err
}

// ClientWatcher is a ResponseWriter that can tell when its client's
// connection has ended (the fault proxy's, the gateway's), so that a
// stalled stream is not held past its client. ClientGone returns nil when
// it cannot tell.
type ClientWatcher interface {
	ClientGone() <-chan struct{}
}

// passEvents reads the answer's events from pr and writes them to w as
// s's stream faults say.
func (f *HTTPFilter) passEvents(w http.ResponseWriter, rc *http.ResponseController, r *http.Request, pr io.Reader, s *ruleState, stop func()) {
	ft := &s.rule.Fault
	rd := wire.NewSSEReader(pr, 0)
	var gap time.Duration
	if ft.EventsPerSecond > 0 {
		gap = time.Duration(float64(time.Second) / ft.EventsPerSecond)
	}
	var last time.Time
	var buf []byte
	for i := int64(0); ; i++ {
		switch {
		case ft.StallAfterEvents != nil && i == *ft.StallAfterEvents:
			stop()
			f.stall(w, r, s)
			panic(http.ErrAbortHandler) // the stalled stream never ends well
		case ft.TruncateAfterEvents != nil && i == *ft.TruncateAfterEvents:
			stop()
			panic(http.ErrAbortHandler)
		case ft.ErrorAfterEvents != nil && i == *ft.ErrorAfterEvents:
			stop()
			name := ""
			if ft.ErrorFormat == FormatAnthropic {
				name = wire.EventError
			}
			w.Write(wire.AppendSSE(buf[:0], name, providerError(ft.ErrorFormat, ft.ErrorType, 0, s.rule.Name)))
			rc.Flush()
			return
		}
		ev, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			stop()
			panic(http.ErrAbortHandler) // cut, or an event over the bound
		}
		if gap > 0 && !last.IsZero() {
			if wait := gap - f.clock.Since(last); wait > 0 {
				if clock.Sleep(r.Context(), f.clock, wait) != nil {
					stop()
					panic(http.ErrAbortHandler)
				}
			}
		}
		last = f.clock.Now()
		buf = wire.AppendSSE(buf[:0], ev.Name, ev.Data)
		if _, err := w.Write(buf); err != nil {
			stop()
			return
		}
		rc.Flush()
	}
}

// stall holds a stream until its client leaves or the fault is removed.
func (f *HTTPFilter) stall(w http.ResponseWriter, r *http.Request, s *ruleState) {
	var gone <-chan struct{}
	for u := w; u != nil; {
		if cw, ok := u.(ClientWatcher); ok {
			gone = cw.ClientGone()
			break
		}
		un, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		u = un.Unwrap()
	}
	select {
	case <-r.Context().Done():
	case <-gone:
	case <-s.gone:
	}
}

// providerError returns the error body a model provider sends (format
// FormatOpenAI or FormatAnthropic) for status, or, with status 0, the
// data of the error event it sends mid-stream. typ, when set, replaces
// the error type the status implies.
func providerError(format, typ string, status int, fault string) []byte {
	note := " (fault injected by relia: " + fault + ")"
	if format == FormatAnthropic {
		msg := "Internal server error"
		switch status {
		case 0, wire.StatusOverloaded:
			msg = "Overloaded"
		case http.StatusTooManyRequests:
			msg = "Number of requests has exceeded your rate limit"
		case http.StatusBadRequest:
			msg = "prompt is too long: the request exceeds the model's context window"
		}
		if typ == "" {
			typ = wire.AnthropicErrorType(status)
			if status == 0 {
				typ = wire.AnthropicOverloaded
			}
		}
		b, _ := json.Marshal(wire.AnthropicErrorBody{Type: "error", Error: wire.AnthropicError{Type: typ, Message: msg + note}})
		return b
	}
	msg, code, param := "The server had an error while processing your request", "", ""
	t := wire.OpenAIErrorType(status)
	switch status {
	case http.StatusTooManyRequests:
		msg, code = "Rate limit reached for requests", wire.CodeRateLimit
	case http.StatusBadRequest:
		msg, code, param = "This model's maximum context length is exceeded by the messages", wire.CodeContextLength, "messages"
	case http.StatusUnauthorized:
		msg = "Incorrect API key provided"
	case wire.StatusOverloaded:
		msg = "The engine is currently overloaded"
	}
	if typ != "" {
		t = typ
	}
	e := wire.NewError(t, code, msg+note)
	if param != "" {
		e.Error.Param = &param
	}
	b, _ := json.Marshal(e)
	return b
}
