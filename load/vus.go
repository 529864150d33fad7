package load

import (
	"fmt"
	"math"
	"time"
)

// VUStage is one stage of a closed-model profile: the number of virtual
// users moves linearly from the previous stage's target (or the start
// count) to Target over Duration.
type VUStage struct {
	Duration time.Duration
	Target   int
}

// VUProfile is a closed-model profile: how many VUs should be active at
// each moment, as a pure function of elapsed time. VU k (numbered from 0)
// is active while k < Active(t); with a Segment, a process runs only the
// VUs it owns, so N processes together run exactly the whole profile.
type VUProfile struct {
	start  int
	stages []VUStage
	max    int
	total  time.Duration
}

// NewVUProfile builds a profile; counts must be >= 0, durations > 0, and
// at least one VU must run at some point.
func NewVUProfile(start int, stages []VUStage) (*VUProfile, error) {
	if start < 0 {
		return nil, fmt.Errorf("start VUs %d must be >= 0", start)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("a VU profile needs at least one stage")
	}
	p := &VUProfile{start: start, max: start}
	for i, st := range stages {
		if st.Duration <= 0 {
			return nil, fmt.Errorf("stage %d: duration %s must be > 0", i, st.Duration)
		}
		if st.Target < 0 {
			return nil, fmt.Errorf("stage %d: target %d VUs must be >= 0", i, st.Target)
		}
		p.max = max(p.max, st.Target)
		p.total += st.Duration
	}
	if p.max == 0 {
		return nil, fmt.Errorf("the profile never runs a VU: raise a target")
	}
	p.stages = append([]VUStage(nil), stages...)
	return p, nil
}

// ConstantVUs is n VUs for d.
func ConstantVUs(n int, d time.Duration) (*VUProfile, error) {
	if n <= 0 {
		return nil, fmt.Errorf("VUs %d: must be > 0", n)
	}
	return NewVUProfile(n, []VUStage{{Duration: d, Target: n}})
}

// Max is the most VUs active at once; executors start that many workers.
func (p *VUProfile) Max() int { return p.max }

// Duration is the profile's length.
func (p *VUProfile) Duration() time.Duration { return p.total }

// Active is the number of VUs that should be running at elapsed time t.
// Ramps round down, so a VU starts once the ramp has fully reached it.
func (p *VUProfile) Active(t time.Duration) int {
	if t < 0 {
		return 0
	}
	from := p.start
	var at time.Duration
	for _, st := range p.stages {
		if t < at+st.Duration {
			frac := float64(t-at) / float64(st.Duration)
			return int(math.Floor(float64(from) + frac*float64(st.Target-from) + 1e-9))
		}
		at += st.Duration
		from = st.Target
	}
	return 0
}

// ActiveIn is Active restricted to the VUs a segment owns (VU k belongs to
// the segment that owns k).
func (p *VUProfile) ActiveIn(seg Segment, t time.Duration) int {
	n := p.Active(t)
	if seg.Count <= 1 {
		return n
	}
	return int(seg.Share(uint64(n)))
}
