package experiment

import (
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/slo"
)

// sloCounter returns how an SLO counts good and total events in a span of
// the recorder, by the rule slo.Evaluate applies: for availability the
// outcomes of its good classes (ok by default) against all outcomes,
// dropped ones included; for latency the outcomes at or under the
// threshold against those with a latency. (slo keeps its own counter
// unexported; TestCounterAgreesWithEvaluate holds the two together.)
func sloCounter(s *slo.SLO) func(outcome.Summary) (good, total int64) {
	if l := s.Spec.SLI.Latency; l != nil {
		return func(sum outcome.Summary) (int64, int64) {
			return sum.Latency.CountAtOrBelow(l.Threshold), sum.Latency.Count()
		}
	}
	good := goodClasses(s)
	return func(sum outcome.Summary) (int64, int64) {
		return sum.Good(func(c outcome.Class) bool { return c < outcome.NumClasses && good[c] })
	}
}

// goodClasses are the classes an availability SLO counts as good: its
// goodClasses, ok by default.
func goodClasses(s *slo.SLO) *[outcome.NumClasses]bool {
	var good [outcome.NumClasses]bool
	names := []string{outcome.ClassOK.String()}
	if a := s.Spec.SLI.Availability; a != nil && len(a.GoodClasses) > 0 {
		names = a.GoodClasses
	}
	for _, n := range names {
		if c, err := outcome.ParseClass(n); err == nil { // validated when the SLO was loaded
			good[c] = true
		}
	}
	return &good
}

// thresholdValue computes a threshold's aggregate over a span of the
// recorder lasting span, by the rule relia load's thresholds follow
// (load.SummaryValue), so that a threshold means the same in a load run
// and in an experiment.
func thresholdValue(t load.Threshold, sum outcome.Summary, span time.Duration) (value float64, events int64, ok bool) {
	return load.SummaryValue(t, sum, span)
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// second is one recorder bucket as the verdict and the journal use it.
type second struct {
	start     time.Time
	summary   outcome.Summary
	sloGood   []int64 // per SLO of the plan
	sloTotal  []int64
	p50, p99  float64 // ms; 0 without latencies
	errorRate float64 // failed requests over sent ones (k6's http_req_failed); 0 without sent outcomes
}

// collect reads every bucket of the recorder in [from, to) once,
// counting each SLO's events in it.
func collect(p *Plan, rec *outcome.Recorder, from, to time.Time) []second {
	counters := make([]func(outcome.Summary) (int64, int64), len(p.SLOs))
	for i, s := range p.SLOs {
		counters[i] = sloCounter(s.SLO)
	}
	var out []second
	for b := range rec.Buckets() {
		if b.From.Before(alignDown(from, rec.Options().BucketWidth)) || !b.From.Before(to) {
			continue
		}
		s := second{start: b.From, summary: b.Summary, sloGood: make([]int64, len(counters)), sloTotal: make([]int64, len(counters))}
		for i, c := range counters {
			sum := b.Summary
			if m := p.SLOs[i].rec; m != nil { // a measure of its own: the same span of its recorder
				sum = m.Window(b.From, b.From.Add(rec.Options().BucketWidth))
			}
			s.sloGood[i], s.sloTotal[i] = c(sum)
		}
		if b.Latency.Count() > 0 {
			s.p50, s.p99 = ms(b.Latency.Quantile(0.5)), ms(b.Latency.Quantile(0.99))
		}
		s.errorRate, _ = b.FailedRate()
		out = append(out, s)
	}
	return out
}

// alignDown returns the start of the bucket of width w that holds t:
// recorder buckets are aligned to the Unix epoch.
func alignDown(t time.Time, w time.Duration) time.Time {
	ns := t.UnixNano()
	r := ns % int64(w)
	if r < 0 {
		r += int64(w)
	}
	return time.Unix(0, ns-r).UTC()
}

// alignUp returns the start of the first bucket of width w that starts
// at or after t.
func alignUp(t time.Time, w time.Duration) time.Time {
	d := alignDown(t, w)
	if d.Before(t) {
		d = d.Add(w)
	}
	return d
}
