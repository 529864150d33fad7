package load

import (
	"errors"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Phases are the parts of one request's time, as k6 names them: the
// wait for a connection (http_req_blocked), opening one
// (http_req_connecting, http_req_tls_handshaking), writing the request
// (http_req_sending), waiting for the first byte of the response
// (http_req_waiting) and reading the rest (http_req_receiving). A phase
// the request did not go through (no new connection) is 0; the phase in
// which a request failed runs to the failure.
type Phases struct {
	// Blocked is the wait for a free connection of the pool, after the
	// request was rendered: 0 when an idle one was at hand.
	Blocked time.Duration
	// Connecting is the TCP connect (with the name lookup); TLSHandshaking
	// the TLS handshake after it. Both are 0 on a reused connection.
	Connecting, TLSHandshaking time.Duration
	// Sending is writing the request; Waiting runs from the end of
	// sending to the first byte of the response (time to first byte);
	// Receiving from the first byte to the last.
	Sending, Waiting, Receiving time.Duration
}

// PhaseRecorders hold the phases of requests in outcome recorders, two
// phases to a recorder, as its latency and its service time: one Record
// carries two phases, so that measuring six of them costs a request three
// records. Each outcome starts when its request does (the scheduled time
// in the open model), so the phases' buckets line up with the requests'.
type PhaseRecorders struct {
	// Connect holds Connecting as latency and TLSHandshaking as service
	// time.
	Connect *outcome.Recorder `json:"connect"`
	// Request holds Blocked as latency and Sending as service time.
	Request *outcome.Recorder `json:"request"`
	// Response holds Waiting as latency and Receiving as service time.
	Response *outcome.Recorder `json:"response"`
}

func newPhaseRecorders() *PhaseRecorders {
	return &PhaseRecorders{Connect: newRecorder(), Request: newRecorder(), Response: newRecorder()}
}

// record adds one request's phases; start picks the bucket.
func (p *PhaseRecorders) record(start time.Time, ph *Phases) {
	p.Connect.Record(phasePair(start, ph.Connecting, ph.TLSHandshaking))
	p.Request.Record(phasePair(start, ph.Blocked, ph.Sending))
	p.Response.Record(phasePair(start, ph.Waiting, ph.Receiving))
}

// phasePair is two phases as one outcome. A service time of 0 would read
// as "the same as the latency", so a zero second phase is recorded as
// 1ns, which the histograms' 1µs resolution counts as 0.
func phasePair(start time.Time, first, second time.Duration) outcome.Outcome {
	return outcome.Outcome{Start: start, Latency: max(first, 0), ServiceTime: max(second, 1)}
}

// valid reports an error when a recorder is missing (a results file
// that names phases without all three).
func (p *PhaseRecorders) valid() error {
	if p.Connect == nil || p.Request == nil || p.Response == nil {
		return errors.New("phases: connect, request and response are required")
	}
	return nil
}

func (p *PhaseRecorders) merge(o *PhaseRecorders) error {
	for _, pair := range [][2]*outcome.Recorder{{p.Connect, o.Connect}, {p.Request, o.Request}, {p.Response, o.Response}} {
		if err := pair[0].Merge(pair[1]); err != nil {
			return err
		}
	}
	return nil
}

// phaseMetrics are the trend metrics of request phases, with the
// recorder and the histogram of PhaseRecorders that hold each.
var phaseMetrics = map[string]struct {
	rec     func(*PhaseRecorders) *outcome.Recorder
	service bool // the recorder's service-time histogram, not its latency
}{
	"http_req_blocked":         {func(p *PhaseRecorders) *outcome.Recorder { return p.Request }, false},
	"http_req_connecting":      {func(p *PhaseRecorders) *outcome.Recorder { return p.Connect }, false},
	"http_req_tls_handshaking": {func(p *PhaseRecorders) *outcome.Recorder { return p.Connect }, true},
	"http_req_sending":         {func(p *PhaseRecorders) *outcome.Recorder { return p.Request }, true},
	"http_req_waiting":         {func(p *PhaseRecorders) *outcome.Recorder { return p.Response }, false},
	"http_req_receiving":       {func(p *PhaseRecorders) *outcome.Recorder { return p.Response }, true},
}

// PhaseMetrics names the phase metrics in the order of a request's life,
// as the summary lists them.
var PhaseMetrics = []string{"http_req_blocked", "http_req_connecting", "http_req_tls_handshaking",
	"http_req_sending", "http_req_waiting", "http_req_receiving"}

// isPhase reports whether metric is a request phase.
func isPhase(metric string) bool {
	_, ok := phaseMetrics[metric]
	return ok
}

// histogram returns the distribution of metric's phase over the buckets
// starting in [from, to); nil when p is nil (a results file written
// before relia measured phases).
func (p *PhaseRecorders) histogram(metric string, from, to time.Time) *outcome.Histogram {
	m, ok := phaseMetrics[metric]
	if !ok || p == nil {
		return nil
	}
	sum := m.rec(p).Window(from, to)
	if m.service {
		return sum.ServiceTime
	}
	return sum.Latency
}
