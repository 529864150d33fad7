package outcome

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Outcome is what became of one request that relia sent, proxied or
// relayed. It is a plain value so that producers build it on the stack
// and the Recorder takes it without allocating.
type Outcome struct {
	// Start is when the request was due (open model: its scheduled time)
	// or started. It picks the time bucket; a zero Start counts at the
	// Unix epoch, where it stands out.
	Start time.Time
	// Latency runs from Start to the end of the response. When Start is
	// the scheduled time it includes the wait for a free worker, which
	// corrects for coordinated omission.
	Latency time.Duration
	// ServiceTime runs from the actual send to the end of the response; 0
	// means equal to Latency.
	ServiceTime time.Duration
	// Status is the HTTP status, 0 when there was no response. Statuses
	// outside 100-599 count as 0.
	Status int
	// Class is what became of the request; see Classify and
	// ClassifyResponse. Undefined values count as ClassOther.
	Class Class
	// BytesIn and BytesOut are the bytes received and sent; non-positive
	// values add nothing.
	BytesIn  int64
	BytesOut int64
	// Name is the route, request name or upstream. The Recorder does not
	// split by name: keep one Recorder per name where a split is wanted.
	Name string
	// Attempt is 1 for the first attempt, 2 for the first retry, and so on.
	Attempt int
}

// Options configures a Recorder. The zero value means the defaults.
type Options struct {
	// BucketWidth is the width of the time buckets, at least 1ms; 0 means
	// 1s. Buckets are aligned to the Unix epoch, so recorders in
	// different processes with the same width line up and merge.
	BucketWidth time.Duration
	// MaxLatency is the highest latency the histograms hold, at least
	// 1µs; 0 means 60s. Higher values count as MaxLatency and are counted
	// in Summary.Clamped.
	MaxLatency time.Duration
}

// Defaults for Options.
const (
	DefaultBucketWidth = time.Second
	DefaultMaxLatency  = 60 * time.Second
)

// withDefaults checks o and fills in the defaults.
func (o Options) withDefaults() (Options, error) {
	var err error
	if o.BucketWidth, err = durationOption("bucket width", o.BucketWidth, DefaultBucketWidth, time.Millisecond, "1ms"); err != nil {
		return o, err
	}
	o.MaxLatency, err = durationOption("max latency", o.MaxLatency, DefaultMaxLatency, time.Microsecond, "the histograms' 1µs resolution")
	return o, err
}

// durationOption returns d, or def when d is 0, or an error when d is
// negative or below least.
func durationOption(name string, d, def, least time.Duration, leastName string) (time.Duration, error) {
	switch {
	case d < 0:
		return d, fmt.Errorf("%s %s is negative", name, d)
	case d == 0:
		return def, nil
	case d < least:
		return d, fmt.Errorf("%s %s is below %s", name, d, leastName)
	}
	return d, nil
}

// Recorder collects Outcomes into epoch-aligned time buckets, each with
// counts by class and status class, bytes, and latency and service-time
// histograms, plus exact per-status-code totals for the whole recorder.
// The load generator, the gateway and the fault proxy all feed one, and
// the SLO engine, the experiment verdict and the reports read it.
//
// Record, Merge and the queries are safe for concurrent use; a query
// made while outcomes are being recorded reads each counter atomically
// but not all of them at one instant, so an outcome being recorded may
// show in some counts and not yet in others. UnmarshalJSON replaces the
// contents and must not run concurrently with other methods.
//
// The zero Recorder uses the default Options. A Recorder must not be
// copied after first use.
type Recorder struct {
	st atomic.Pointer[state]
}

// NewRecorder returns an empty Recorder, or an error if o is invalid.
func NewRecorder(o Options) (*Recorder, error) {
	s, err := newState(o)
	if err != nil {
		return nil, fmt.Errorf("creating outcome recorder: %w", err)
	}
	r := &Recorder{}
	r.st.Store(s)
	return r, nil
}

func (r *Recorder) state() *state {
	return loadOrStore(&r.st, func() *state {
		s, _ := newState(Options{}) // the defaults are valid
		return s
	})
}

// Options returns the recorder's options with defaults filled in, for
// creating recorders that merge with it.
func (r *Recorder) Options() Options {
	s := r.state()
	return Options{BucketWidth: time.Duration(s.width), MaxLatency: s.maxLatency}
}

// Record adds one outcome. It is safe for concurrent use. It allocates
// only while a bucket fills: the bucket and a goroutine's share of it when
// first touched, then 1 KB for each further 256 outcomes of that share up
// to 2048, and 1 KB for each 256-cell latency range reached after that;
// recording into a bucket in use allocates nothing.
func (r *Recorder) Record(o Outcome) {
	s := r.state()
	b := s.bucketFor(o.Start)
	class := o.Class
	if class >= NumClasses {
		class = ClassOther
	}
	code := 0
	if uint(o.Status-100) < 500 {
		code = o.Status
	}
	lat, svc, clamped := -1, -1, false
	if class != ClassDropped {
		lat, clamped = s.cell(o.Latency)
		svc = lat
		if o.ServiceTime != 0 {
			var c bool
			svc, c = s.cell(o.ServiceTime)
			clamped = clamped || c
		}
	}

	k := stripeHint() & s.stripeMask
	sh := &s.shards[k]
	st := b.stripe(k)
	sh.mu.Lock()
	st.byClass[class]++
	st.byStatusClass[code/100]++
	st.bytesIn += max(o.BytesIn, 0)
	st.bytesOut += max(o.BytesOut, 0)
	if clamped {
		st.clamped++
	}
	sh.codes()[code]++
	switch {
	case lat < 0: // dropped: never sent, so no latency
	case svc == lat:
		if !st.append(newLogEntry(layerSame, lat, 1), 1) {
			st.addDense(layerSame, lat, 1, s.numChunks)
		}
	default:
		if !st.append(newLogEntry(layerLatency, lat, 1), 2) {
			st.addDense(layerLatency, lat, 1, s.numChunks)
			st.addDense(layerService, svc, 1, s.numChunks)
		} else {
			st.append(newLogEntry(layerService, svc, 1), 1)
		}
	}
	sh.mu.Unlock()
}

// Merge adds every count of other to r, exactly: the result is what one
// recorder fed both streams of outcomes would hold. It fails if the
// bucket widths differ or if other's histograms reach above r's
// MaxLatency. Merge is safe while either recorder is recording; outcomes
// recorded into other during the merge may or may not be included.
func (r *Recorder) Merge(other *Recorder) error {
	if other == nil {
		return nil
	}
	if other == r {
		return errors.New("merging a recorder into itself")
	}
	s := r.state()
	o := other.st.Load()
	if o == nil {
		return nil
	}
	if o.width != s.width {
		return fmt.Errorf("merging recorders: bucket widths differ (%s and %s)",
			time.Duration(s.width), time.Duration(o.width))
	}
	if o.maxLatency > s.maxLatency {
		return fmt.Errorf("merging recorders: max latency %s is above this recorder's %s",
			o.maxLatency, s.maxLatency)
	}
	s.addStatusCodes(o.statusCodes())
	for ob := range o.buckets(math.MinInt64, math.MaxInt64) {
		var counts stripe
		var layers [numLayers]Histogram
		o.read(ob, &counts, func(layer, cell int, n int64) { layers[layer].add(cell, n) })
		s.add(s.bucketAt(ob.idx), &counts, &layers)
	}
	return nil
}

// StatusCodes returns the exact number of responses per HTTP status code
// over the whole recorder (not per bucket). Outcomes without a status are
// not included; Summary.ByStatusClass[0] counts them.
func (r *Recorder) StatusCodes() map[int]int64 {
	m := make(map[int]int64)
	for code, n := range r.state().statusCodes() {
		if n != 0 && code != 0 {
			m[code] = n
		}
	}
	return m
}
