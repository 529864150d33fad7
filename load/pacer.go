package load

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// RateStage is one stage of an open-model (arrival-rate) profile: the rate
// moves linearly from the previous stage's target (or the profile's start
// rate) to Target over Duration. A stage whose Target equals the previous
// rate holds the rate constant.
type RateStage struct {
	Duration time.Duration
	// Target is the arrival rate, in requests per second, at the end of the
	// stage.
	Target float64
}

// Schedule is an open-model arrival schedule: when the n-th request of the
// test is due, as a pure function of n. Everything about pacing follows from
// it: the executor sends request n at Start+Arrival(n), segments take every
// N-th arrival, and tests check it without any clock.
type Schedule struct {
	stages []scheduleStage
	total  uint64
}

// scheduleStage caches the cumulative arrivals at a stage's start so that
// Arrival is a binary search plus one closed-form inverse.
type scheduleStage struct {
	start    time.Duration // offset of the stage from the test start
	duration time.Duration
	from, to float64 // rates at the stage's start and end, per second
	before   float64 // arrivals due before the stage starts
}

// NewSchedule builds a schedule from a start rate and stages. Rates must be
// finite and non-negative, durations positive, and the schedule must send at
// least one request.
func NewSchedule(startRate float64, stages []RateStage) (*Schedule, error) {
	if math.IsNaN(startRate) || math.IsInf(startRate, 0) || startRate < 0 {
		return nil, fmt.Errorf("start rate %v: must be a finite rate >= 0", startRate)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("a rate schedule needs at least one stage")
	}
	s := &Schedule{}
	var at time.Duration
	var before float64
	from := startRate
	for i, st := range stages {
		if st.Duration <= 0 {
			return nil, fmt.Errorf("stage %d: duration %s must be > 0", i, st.Duration)
		}
		if math.IsNaN(st.Target) || math.IsInf(st.Target, 0) || st.Target < 0 {
			return nil, fmt.Errorf("stage %d: target rate %v must be a finite rate >= 0", i, st.Target)
		}
		s.stages = append(s.stages, scheduleStage{start: at, duration: st.Duration, from: from, to: st.Target, before: before})
		before += (from + st.Target) / 2 * st.Duration.Seconds()
		at += st.Duration
		from = st.Target
	}
	// Arrivals are counted with a small tolerance so that 1000/s for 10 s is
	// exactly 10,000 requests despite floating-point rounding.
	s.total = uint64(math.Floor(before + 1e-9))
	if s.total == 0 {
		return nil, fmt.Errorf("the schedule sends no request: raise the rate or the duration")
	}
	return s, nil
}

// ConstantSchedule is a schedule of rate requests per second for d.
func ConstantSchedule(rate float64, d time.Duration) (*Schedule, error) {
	if rate <= 0 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return nil, fmt.Errorf("rate %v: must be > 0", rate)
	}
	return NewSchedule(rate, []RateStage{{Duration: d, Target: rate}})
}

// Total returns how many requests the whole schedule sends.
func (s *Schedule) Total() uint64 { return s.total }

// Duration returns the schedule's length.
func (s *Schedule) Duration() time.Duration {
	last := s.stages[len(s.stages)-1]
	return last.start + last.duration
}

// RateAt returns the target arrival rate at offset t from the start.
func (s *Schedule) RateAt(t time.Duration) float64 {
	for _, st := range s.stages {
		if t < st.start+st.duration {
			frac := float64(t-st.start) / float64(st.duration)
			return st.from + (st.to-st.from)*frac
		}
	}
	return s.stages[len(s.stages)-1].to
}

// Arrival returns the offset from the test start at which request n (0-based)
// is due, and false when the schedule sends fewer than n+1 requests. Request
// n is due when the cumulative number of arrivals the rate curve has
// produced reaches n, so request 0 is due as soon as the rate is non-zero.
func (s *Schedule) Arrival(n uint64) (time.Duration, bool) {
	if n >= s.total {
		return 0, false
	}
	k := float64(n)
	// The last stage whose cumulative count at its start is <= k holds it.
	lo, hi := 0, len(s.stages)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if s.stages[mid].before <= k {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// Skip stages that send nothing before k is reached (rate 0 throughout
	// or too short to reach it).
	for i := lo; i < len(s.stages); i++ {
		st := s.stages[i]
		need := k - st.before
		if t, ok := st.inverse(need); ok {
			return st.start + t, true
		}
	}
	// Rounding can leave the very last arrival a hair past the end.
	return s.Duration(), true
}

// inverse returns the time into the stage at which its cumulative count
// reaches need, solving from*t + (to-from)/(2D)*t² = need.
func (st scheduleStage) inverse(need float64) (time.Duration, bool) {
	d := st.duration.Seconds()
	stageTotal := (st.from + st.to) / 2 * d
	if need > stageTotal+1e-9 {
		return 0, false
	}
	if need <= 0 {
		if st.from > 0 {
			return 0, true
		}
		// Rate starts at 0: the first arrival is the instant the ramp makes
		// any progress; count it at the stage start.
		return 0, st.to > 0
	}
	a := (st.to - st.from) / (2 * d)
	var t float64
	if math.Abs(a) < 1e-12 {
		t = need / st.from
	} else {
		// Numerically stable root of a*t² + from*t - need = 0 that lies in
		// [0, d].
		disc := st.from*st.from + 4*a*need
		if disc < 0 {
			disc = 0
		}
		t = 2 * need / (st.from + math.Sqrt(disc))
	}
	if t > d {
		t = d
	}
	return time.Duration(t * float64(time.Second)), true
}

// Segment is one process's share of a distributed test: Index in [0, Count).
// Segment i of N takes the arrivals and VUs whose number is i modulo N, so N
// processes together produce exactly the whole test, each spread evenly
// over time.
type Segment struct {
	Index, Count int
}

// Whole is the segment of a test that is not split.
var Whole = Segment{Index: 0, Count: 1}

// ParseSegment parses "i/N" (0-based i, as in --segment 0/4).
func ParseSegment(s string) (Segment, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil {
		return Segment{}, fmt.Errorf("segment %q: want i/N, e.g. 0/4", s)
	}
	seg := Segment{Index: i, Count: n}
	if err := seg.Validate(); err != nil {
		return Segment{}, err
	}
	return seg, nil
}

// Validate checks 0 <= Index < Count.
func (s Segment) Validate() error {
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return fmt.Errorf("segment %d/%d: want 0 <= i < N", s.Index, s.Count)
	}
	return nil
}

// String returns "i/N".
func (s Segment) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Owns reports whether item n (an arrival or a VU number) belongs to the
// segment.
func (s Segment) Owns(n uint64) bool { return n%uint64(s.Count) == uint64(s.Index) }

// Share returns how many of total items belong to the segment.
func (s Segment) Share(total uint64) uint64 {
	c, i := uint64(s.Count), uint64(s.Index)
	share := total / c
	if total%c > i {
		share++
	}
	return share
}

// Nth returns the number of the segment's k-th item (0-based) in the whole
// test: the segment's arrival k is the test's arrival Nth(k).
func (s Segment) Nth(k uint64) uint64 { return k*uint64(s.Count) + uint64(s.Index) }
