package load

import (
	"testing"
	"time"
)

// TestStretchKeepsTheShape: --duration alone scales stages in proportion
// (the last takes the rounding) and replaces a constant or preset length.
func TestStretchKeepsTheShape(t *testing.T) {
	t.Parallel()
	l := LoadSpec{Stages: []Stage{{Duration: 30 * time.Second, Target: 50}, {Duration: 2 * time.Minute, Target: 50}, {Duration: 30 * time.Second, Target: 0}}}
	l.Stretch(5 * time.Second)
	want := []time.Duration{833 * time.Millisecond, 3333 * time.Millisecond, 834 * time.Millisecond}
	for i, st := range l.Stages {
		if st.Duration != want[i] {
			t.Errorf("stage %d: %v, want %v", i, st.Duration, want[i])
		}
	}
	if l.Stages[1].Target != 50 || l.Duration != 0 {
		t.Errorf("targets or duration changed: %+v", l)
	}
	p := LoadSpec{Preset: PresetStress, Duration: 10 * time.Minute}
	p.Stretch(time.Minute)
	if p.Duration != time.Minute || p.Preset != PresetStress {
		t.Errorf("preset: %+v", p)
	}
}
