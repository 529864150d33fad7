package experiment

import (
	"sync"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// Onsets records, for each SLO of a plan and each recorder bucket, when
// the first bad event of the bucket was due (its outcome's Start): where
// in a bucket an SLO's trouble began, finer than buckets tell. The
// verdict blames a fault for a bad bucket only when that first bad event
// falls within the fault's window, so a fault that ended a moment into a
// bucket is not blamed for what began after it, in the next fault.
//
// Observe is safe for concurrent use and takes a lock only for bad
// events.
type Onsets struct {
	width time.Duration
	bad   []func(outcome.Outcome) bool

	mu    sync.Mutex
	first []map[int64]time.Time // per SLO: bucket index -> earliest bad Start
}

// NewOnsets returns an empty record for the SLOs of p over buckets of
// width.
func NewOnsets(p *Plan, width time.Duration) *Onsets {
	o := &Onsets{width: width}
	for _, s := range p.SLOs {
		o.bad = append(o.bad, sloBad(s))
		o.first = append(o.first, map[int64]time.Time{})
	}
	return o
}

// Observe notes out if it is a bad event of some SLO.
func (o *Onsets) Observe(out outcome.Outcome) {
	for i, bad := range o.bad {
		if !bad(out) {
			continue
		}
		idx := out.Start.UnixNano() / int64(o.width)
		o.mu.Lock()
		if t, ok := o.first[i][idx]; !ok || out.Start.Before(t) {
			o.first[i][idx] = out.Start
		}
		o.mu.Unlock()
	}
}

// First returns when the first bad event of SLO i (in the plan's order)
// was due in the bucket that starts at bucket; ok is false when none was
// observed there.
func (o *Onsets) First(i int, bucket time.Time) (time.Time, bool) {
	if o == nil || i >= len(o.first) {
		return time.Time{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.first[i][bucket.UnixNano()/int64(o.width)]
	return t, ok
}

// sloBad returns whether an outcome is a bad event of s, by the rule its
// counter (sloCounter) applies to buckets: for availability, a class
// outside its good classes; for latency, a sent request slower than the
// threshold.
func sloBad(s PlannedSLO) func(outcome.Outcome) bool {
	if s.SLO == nil || s.Measure != "" { // a measure's events are not the requests': judged by buckets
		return func(outcome.Outcome) bool { return false }
	}
	if l := s.SLO.Spec.SLI.Latency; l != nil {
		return func(o outcome.Outcome) bool { return o.Class != outcome.ClassDropped && o.Latency > l.Threshold }
	}
	good := goodClasses(s.SLO)
	return func(o outcome.Outcome) bool { return o.Class >= outcome.NumClasses || !good[o.Class] }
}
