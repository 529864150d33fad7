package load

import (
	"encoding/hex"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// MaxFailedTraces is how many failed requests that carried a traceparent
// a result keeps the trace ids of: enough to open a few traces of the
// failures, never a list that grows with the run.
const MaxFailedTraces = 20

// TraceStats are what a run kept of the requests that carried a W3C
// traceparent header (Test.TraceSample).
type TraceStats struct {
	// Sampled counts the requests sent with a traceparent; Failed those of
	// them that failed, as a request or by a check.
	Sampled int64 `json:"sampled"`
	Failed  int64 `json:"failed"`
	// FailedSamples are the first MaxFailedTraces failed ones, in order of
	// their start, with the trace id to look them up by.
	FailedSamples []TracedRequest `json:"failed_samples"`
}

// TracedRequest is a request that carried a traceparent, with what
// became of it.
type TracedRequest struct {
	// TraceID is the trace id, 32 lower-case hex digits, as the service's
	// tracing backend shows it.
	TraceID string        `json:"trace_id"`
	Name    string        `json:"name"`
	Start   time.Time     `json:"start"`
	Status  int           `json:"status"`
	Class   outcome.Class `json:"class"`
}

// traceparentKey is the header's name, as W3C Trace Context writes it.
var traceparentKey = []byte("traceparent")

// traceparentLen is the length of a version 00 traceparent:
// "00-<32 hex trace id>-<16 hex span id>-01".
const traceparentLen = 55

// sampleTrace reports whether a request is to carry a traceparent, share
// being the sampled share. The draw comes from the runtime's random
// source, not from the scenario's seeded one, so that tracing changes no
// choice of the scenario and trace ids differ from run to run.
func sampleTrace(share float64) bool {
	return share >= 1 || (share > 0 && rand.Float64() < share)
}

// newTraceparent writes a sampled version 00 traceparent with fresh
// random trace and span ids into b and returns the trace id.
func newTraceparent(b *[traceparentLen]byte) (id [16]byte) {
	var span [8]byte
	for {
		hi, lo, s := rand.Uint64(), rand.Uint64(), rand.Uint64()
		if (hi != 0 || lo != 0) && s != 0 { // all-zero ids are invalid
			putUint64(id[:8], hi)
			putUint64(id[8:], lo)
			putUint64(span[:], s)
			break
		}
	}
	copy(b[:3], "00-")
	hex.Encode(b[3:35], id[:])
	b[35] = '-'
	hex.Encode(b[36:52], span[:])
	copy(b[52:], "-01")
	return id
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// hasHeader reports whether the step sets header key itself.
func (s *Step) hasHeader(key string) bool {
	for _, h := range s.Headers {
		if strings.EqualFold(h.Key, key) {
			return true
		}
	}
	return false
}

// traceLog collects a run's traced requests from every worker.
type traceLog struct {
	sampled atomic.Int64
	mu      sync.Mutex
	stats   TraceStats // Failed and FailedSamples
}

// note records one traced request's outcome; only failures take the
// lock, and only the first MaxFailedTraces are kept.
func (l *traceLog) note(name string, id *[16]byte, o *outcome.Outcome) {
	l.sampled.Add(1)
	if o.Class == outcome.ClassOK || o.Class == outcome.ClassDropped {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Failed++
	if len(l.stats.FailedSamples) < MaxFailedTraces {
		l.stats.FailedSamples = append(l.stats.FailedSamples, TracedRequest{TraceID: hex.EncodeToString(id[:]),
			Name: name, Start: o.Start.UTC(), Status: o.Status, Class: o.Class})
	}
}

func (l *traceLog) result() TraceStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stats
	st.Sampled = l.sampled.Load()
	st.FailedSamples = slices.Clone(st.FailedSamples)
	slices.SortStableFunc(st.FailedSamples, func(a, b TracedRequest) int { return a.Start.Compare(b.Start) })
	return st
}

// merge adds another segment's traced requests, keeping the first
// MaxFailedTraces failures by start.
func (t *TraceStats) merge(o TraceStats) {
	t.Sampled += o.Sampled
	t.Failed += o.Failed
	t.FailedSamples = append(t.FailedSamples, o.FailedSamples...)
	slices.SortStableFunc(t.FailedSamples, func(a, b TracedRequest) int { return a.Start.Compare(b.Start) })
	if len(t.FailedSamples) > MaxFailedTraces {
		t.FailedSamples = t.FailedSamples[:MaxFailedTraces]
	}
}
