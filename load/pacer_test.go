package load

import (
	"math"
	"testing"
	"time"
)

func TestScheduleConstantRate(t *testing.T) {
	t.Parallel()
	s, err := ConstantSchedule(1000, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 10000 {
		t.Fatalf("total = %d, want 10000", s.Total())
	}
	for _, tc := range []struct {
		n    uint64
		want time.Duration
	}{{0, 0}, {1, time.Millisecond}, {999, 999 * time.Millisecond}, {1000, time.Second}, {9999, 9999 * time.Millisecond}} {
		got, ok := s.Arrival(tc.n)
		if !ok || absDur(got-tc.want) > time.Microsecond {
			t.Errorf("Arrival(%d) = %v, %v; want %v", tc.n, got, ok, tc.want)
		}
	}
	if _, ok := s.Arrival(10000); ok {
		t.Error("Arrival past the total reported ok")
	}
}

func TestScheduleRampMatchesIntegral(t *testing.T) {
	t.Parallel()
	// 0 -> 100/s over 10 s (500 arrivals), hold 100/s for 5 s (500), then
	// down to 0 over 2 s (100): 1,100 in all.
	s, err := NewSchedule(0, []RateStage{{10 * time.Second, 100}, {5 * time.Second, 100}, {2 * time.Second, 0}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 1100 {
		t.Fatalf("total = %d, want 1100", s.Total())
	}
	prev := time.Duration(-1)
	for n := uint64(0); n < s.Total(); n++ {
		at, ok := s.Arrival(n)
		if !ok {
			t.Fatalf("Arrival(%d) not ok", n)
		}
		if at < prev {
			t.Fatalf("Arrival(%d) = %v goes back from %v", n, at, prev)
		}
		prev = at
		// Cumulative arrivals at time at must equal n: check against the
		// closed form of the first ramp, N(t) = 5 t².
		if at < 10*time.Second {
			sec := at.Seconds()
			if math.Abs(5*sec*sec-float64(n)) > 0.01 {
				t.Fatalf("Arrival(%d) = %v: N(t) = %v", n, at, 5*sec*sec)
			}
		}
	}
	if at, _ := s.Arrival(500); absDur(at-10*time.Second) > time.Microsecond {
		t.Errorf("arrival 500 at %v, want 10s (end of ramp)", at)
	}
	if at, _ := s.Arrival(1000); absDur(at-15*time.Second) > time.Microsecond {
		t.Errorf("arrival 1000 at %v, want 15s (end of hold)", at)
	}
	if got := s.RateAt(5 * time.Second); math.Abs(got-50) > 1e-9 {
		t.Errorf("RateAt(5s) = %v, want 50", got)
	}
}

func TestScheduleSkipsIdleStages(t *testing.T) {
	t.Parallel()
	s, err := NewSchedule(0, []RateStage{{5 * time.Second, 0}, {time.Second, 10}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total() != 5 {
		t.Fatalf("total = %d, want 5", s.Total())
	}
	if at, _ := s.Arrival(0); at != 5*time.Second {
		t.Fatalf("first arrival at %v, want 5s (after the idle stage)", at)
	}
}

func TestScheduleRejectsBadInput(t *testing.T) {
	t.Parallel()
	for name, build := range map[string]func() (*Schedule, error){
		"zero rate":      func() (*Schedule, error) { return ConstantSchedule(0, time.Second) },
		"negative rate":  func() (*Schedule, error) { return ConstantSchedule(-5, time.Second) },
		"NaN":            func() (*Schedule, error) { return ConstantSchedule(math.NaN(), time.Second) },
		"zero duration":  func() (*Schedule, error) { return ConstantSchedule(10, 0) },
		"no stages":      func() (*Schedule, error) { return NewSchedule(10, nil) },
		"negative stage": func() (*Schedule, error) { return NewSchedule(10, []RateStage{{time.Second, -1}}) },
		"sends nothing":  func() (*Schedule, error) { return NewSchedule(0, []RateStage{{time.Second, 0}}) },
	} {
		if _, err := build(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestSegmentsPartitionTheTest(t *testing.T) {
	t.Parallel()
	const total = 1003
	for _, n := range []int{1, 2, 3, 7} {
		seen := make([]int, total)
		var shares uint64
		for i := 0; i < n; i++ {
			seg := Segment{Index: i, Count: n}
			share := seg.Share(total)
			shares += share
			for k := uint64(0); k < share; k++ {
				item := seg.Nth(k)
				if !seg.Owns(item) {
					t.Fatalf("segment %v: Nth(%d) = %d not owned", seg, k, item)
				}
				seen[item]++
			}
		}
		if shares != total {
			t.Fatalf("N=%d: shares add to %d, want %d", n, shares, total)
		}
		for item, c := range seen {
			if c != 1 {
				t.Fatalf("N=%d: item %d taken %d times", n, item, c)
			}
		}
	}
}

func TestParseSegment(t *testing.T) {
	t.Parallel()
	if seg, err := ParseSegment("2/4"); err != nil || seg != (Segment{2, 4}) {
		t.Fatalf("ParseSegment(2/4) = %v, %v", seg, err)
	}
	for _, bad := range []string{"", "4/4", "-1/4", "1/0", "a/b", "1", "1/2/3", "1/2x"} {
		if _, err := ParseSegment(bad); err == nil {
			t.Errorf("ParseSegment(%q) succeeded", bad)
		}
	}
}

func FuzzParseSegment(f *testing.F) {
	for _, s := range []string{"0/1", "3/4", "x", "1/0", "-1/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		seg, err := ParseSegment(s)
		if err != nil {
			return
		}
		if seg.Validate() != nil {
			t.Fatalf("ParseSegment(%q) returned invalid %v", s, seg)
		}
	})
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
