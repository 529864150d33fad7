package load

import (
	"testing"
	"time"
)

func TestVUProfileRamps(t *testing.T) {
	p, err := NewVUProfile(0, []VUStage{
		{Duration: 10 * time.Second, Target: 100},
		{Duration: 20 * time.Second, Target: 100},
		{Duration: 10 * time.Second, Target: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Duration
		want int
	}{
		{-time.Second, 0}, {0, 0}, {time.Second, 10}, {5500 * time.Millisecond, 55},
		{10 * time.Second, 100}, {29 * time.Second, 100}, {35 * time.Second, 50},
		{40 * time.Second, 0}, {time.Hour, 0},
	} {
		if got := p.Active(tt.at); got != tt.want {
			t.Errorf("Active(%s) = %d, want %d", tt.at, got, tt.want)
		}
	}
	if p.Max() != 100 || p.Duration() != 40*time.Second {
		t.Fatalf("Max %d Duration %s", p.Max(), p.Duration())
	}
}

func TestVUProfileSegmentsSumToWhole(t *testing.T) {
	p, err := NewVUProfile(3, []VUStage{{Duration: time.Minute, Target: 97}})
	if err != nil {
		t.Fatal(err)
	}
	for at := time.Duration(0); at < time.Minute; at += 700 * time.Millisecond {
		sum := 0
		for i := range 4 {
			sum += p.ActiveIn(Segment{Index: i, Count: 4}, at)
		}
		if want := p.Active(at); sum != want {
			t.Fatalf("at %s segments run %d VUs, whole runs %d", at, sum, want)
		}
	}
}

func TestVUProfileRejectsBadInput(t *testing.T) {
	for name, build := range map[string]func() (*VUProfile, error){
		"negative start":  func() (*VUProfile, error) { return NewVUProfile(-1, []VUStage{{time.Second, 1}}) },
		"no stages":       func() (*VUProfile, error) { return NewVUProfile(1, nil) },
		"zero duration":   func() (*VUProfile, error) { return NewVUProfile(1, []VUStage{{0, 1}}) },
		"negative target": func() (*VUProfile, error) { return NewVUProfile(1, []VUStage{{time.Second, -1}}) },
		"never a VU":      func() (*VUProfile, error) { return NewVUProfile(0, []VUStage{{time.Second, 0}}) },
		"constant zero":   func() (*VUProfile, error) { return ConstantVUs(0, time.Second) },
	} {
		if _, err := build(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
