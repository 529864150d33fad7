package outcome

import (
	"iter"
	"math"
	"time"
)

// Summary is what a Recorder holds over a span of buckets. Its counts are
// sums, so SLIs computed from it are ratios of summed counts, never
// averages of per-bucket ratios.
type Summary struct {
	// From and To bound the time covered: the window asked for, or for
	// Total and buckets, from the first bucket's start to the last one's
	// end.
	From, To time.Time
	// Total counts every outcome, dropped ones included.
	Total int64
	// ByClass counts outcomes by class.
	ByClass [NumClasses]int64
	// ByStatusClass counts outcomes by status class: index 1..5 for
	// 1xx..5xx, 0 for outcomes without a status.
	ByStatusClass [statusClasses]int64
	// BytesIn and BytesOut are the bytes received and sent.
	BytesIn, BytesOut int64
	// Clamped counts outcomes whose latency or service time was above the
	// recorder's MaxLatency and was recorded as MaxLatency.
	Clamped int64
	// Latency is the distribution of latencies of every outcome but the
	// dropped ones (which were never sent). Never nil.
	Latency *Histogram
	// ServiceTime is the distribution of service times of the same
	// outcomes. Never nil.
	ServiceTime *Histogram
}

// Good returns the number of outcomes whose class good accepts, and the
// total number of outcomes, for an availability SLI good/total. A nil
// good accepts the classes that have not Failed.
func (s Summary) Good(good func(Class) bool) (goodCount, total int64) {
	for c, n := range s.ByClass {
		if good == nil && !Class(c).Failed() || good != nil && good(Class(c)) {
			goodCount += n
		}
	}
	return goodCount, s.Total
}

// Sent counts the outcomes that were sent: every one but the dropped
// ones, which never left the producer.
func (s Summary) Sent() int64 { return s.Total - s.ByClass[ClassDropped] }

// RequestsFailed counts the sent outcomes that failed as requests, by
// Class.RequestFailed: k6's http_req_failed.
func (s Summary) RequestsFailed() int64 {
	var n int64
	for c, k := range s.ByClass {
		if Class(c).RequestFailed() {
			n += k
		}
	}
	return n
}

// FailedRate is RequestsFailed over Sent; ok is false when nothing was
// sent.
func (s Summary) FailedRate() (rate float64, ok bool) {
	sent := s.Sent()
	if sent == 0 {
		return 0, false
	}
	return float64(s.RequestsFailed()) / float64(sent), true
}

// Bucket is the Summary of one time bucket; From is its start and To its
// end.
type Bucket struct {
	Summary
}

func newSummary(from, to time.Time) Summary {
	return Summary{From: from, To: to, Latency: new(Histogram), ServiceTime: new(Histogram)}
}

// addTo adds bucket b's counts and histograms to sum.
func (s *state) addTo(sum *Summary, b *bucket) {
	var st stripe
	s.read(b, &st, func(layer, cell int, n int64) {
		if layer != layerService {
			sum.Latency.add(cell, n)
		}
		if layer != layerLatency {
			sum.ServiceTime.add(cell, n)
		}
	})
	for c, n := range st.byClass {
		sum.Total += n
		sum.ByClass[c] += n
	}
	for sc, n := range st.byStatusClass {
		sum.ByStatusClass[sc] += n
	}
	sum.BytesIn += st.bytesIn
	sum.BytesOut += st.bytesOut
	sum.Clamped += st.clamped
}

// Span returns the start of the first and of the last bucket that holds
// outcomes; ok is false when the recorder is empty.
func (r *Recorder) Span() (first, last time.Time, ok bool) {
	s := r.state()
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for b := range s.buckets(math.MinInt64, math.MaxInt64) {
		lo, hi = min(lo, b.idx), max(hi, b.idx)
	}
	if lo > hi {
		return time.Time{}, time.Time{}, false
	}
	return s.start(lo), s.start(hi), true
}

// Window summarises the buckets whose start is in [from, to). A zero from
// or to leaves that side open; From and To of the result are then the
// covered span's. Windows that do not fall on bucket boundaries include
// the buckets that start inside them, whole.
func (r *Recorder) Window(from, to time.Time) Summary {
	s := r.state()
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !from.IsZero() {
		lo = ceilDiv(from.UnixNano(), s.width)
	}
	if !to.IsZero() {
		hi = ceilDiv(to.UnixNano(), s.width)
	}
	sum := s.summarize(lo, hi)
	if !from.IsZero() {
		sum.From = from
	}
	if !to.IsZero() {
		sum.To = to
	}
	return sum
}

// Total summarises every bucket.
func (r *Recorder) Total() Summary {
	return r.state().summarize(math.MinInt64, math.MaxInt64)
}

func (s *state) summarize(lo, hi int64) Summary {
	sum := newSummary(time.Time{}, time.Time{})
	first, last, seen := int64(0), int64(0), false
	for b := range s.buckets(lo, hi) {
		if !seen {
			first, seen = b.idx, true
		}
		last = b.idx
		s.addTo(&sum, b)
	}
	if seen {
		sum.From, sum.To = s.start(first), s.start(last+1)
	}
	return sum
}

// Series returns every bucket that holds outcomes, in time order, for
// plots and per-bucket SLIs. Buckets without outcomes are absent, not
// zero. Each bucket carries its own histograms, so a long run's series
// is large; Buckets yields them one at a time instead.
func (r *Recorder) Series() []Bucket {
	var out []Bucket
	for b := range r.Buckets() {
		out = append(out, b)
	}
	return out
}

// Buckets yields every bucket that holds outcomes, in time order, like
// Series but without keeping them all.
func (r *Recorder) Buckets() iter.Seq[Bucket] {
	return func(yield func(Bucket) bool) {
		s := r.state()
		for b := range s.buckets(math.MinInt64, math.MaxInt64) {
			out := Bucket{newSummary(s.start(b.idx), s.start(b.idx+1))}
			s.addTo(&out.Summary, b)
			if !yield(out) {
				return
			}
		}
	}
}
