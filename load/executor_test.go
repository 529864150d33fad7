package load

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// drive runs fn while advancing the fake clock to each pending deadline,
// until fn returns.
func drive(clk *clock.Fake, fn func()) {
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	for {
		select {
		case <-done:
			return
		default:
		}
		if d, ok := clk.NextDeadline(); ok {
			clk.Set(d)
		} else {
			runtime.Gosched()
		}
	}
}

func TestOpenExecutorSendsEveryArrivalOnTime(t *testing.T) {
	sched, err := NewSchedule(0, []RateStage{{Duration: 2 * time.Second, Target: 20}})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Time{})
	start := clk.Now()
	var mu sync.Mutex
	var got []Arrival
	e := &OpenExecutor{Schedule: sched, MaxInFlight: 100, Clock: clk, Do: func(_ context.Context, a Arrival) {
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}}
	var stats OpenStats
	drive(clk, func() { stats = e.Run(context.Background(), start) })
	if stats.Dropped != 0 || stats.Dispatched != sched.Total() || uint64(len(got)) != sched.Total() {
		t.Fatalf("stats %+v, got %d arrivals, want %d", stats, len(got), sched.Total())
	}
	slices.SortFunc(got, func(a, b Arrival) int { return int(a.N) - int(b.N) })
	for i, a := range got {
		at, _ := sched.Arrival(uint64(i))
		if a.N != uint64(i) || !a.Due.Equal(start.Add(at)) {
			t.Fatalf("arrival %d: got %+v, want n=%d due %s", i, a, i, at)
		}
	}
}

func TestOpenExecutorDropsWhenEveryWorkerIsBusy(t *testing.T) {
	sched, _ := ConstantSchedule(10, time.Second)
	clk := clock.NewFake(time.Time{})
	release := make(chan struct{})
	var mu sync.Mutex
	var dropped []uint64
	e := &OpenExecutor{Schedule: sched, MaxInFlight: 3, Clock: clk,
		Do:   func(context.Context, Arrival) { <-release },
		Drop: func(a Arrival) { mu.Lock(); dropped = append(dropped, a.N); mu.Unlock() },
	}
	var stats OpenStats
	drive(clk, func() {
		go func() {
			// Release the workers only after the dispatcher is done.
			for {
				mu.Lock()
				n := len(dropped)
				mu.Unlock()
				if n == 7 {
					break
				}
				runtime.Gosched()
			}
			close(release)
		}()
		stats = e.Run(context.Background(), clk.Now())
	})
	if stats.Dispatched != 3 || stats.Dropped != 7 || stats.Workers != 3 {
		t.Fatalf("stats %+v, want 3 sent and 7 dropped", stats)
	}
	if !slices.Equal(dropped, []uint64{3, 4, 5, 6, 7, 8, 9}) {
		t.Fatalf("dropped %v", dropped)
	}
}

func TestOpenExecutorSegmentsPartitionArrivals(t *testing.T) {
	sched, _ := ConstantSchedule(50, time.Second)
	seen := map[uint64]int{}
	for i := range 3 {
		clk := clock.NewFake(time.Time{})
		var mu sync.Mutex
		// Sent or dropped, every arrival is accounted to exactly one segment.
		count := func(a Arrival) { mu.Lock(); seen[a.N]++; mu.Unlock() }
		e := &OpenExecutor{Schedule: sched, Segment: Segment{Index: i, Count: 3}, MaxInFlight: 5, Clock: clk,
			Do: func(_ context.Context, a Arrival) { count(a) }, Drop: count}
		drive(clk, func() { e.Run(context.Background(), clk.Now()) })
	}
	if uint64(len(seen)) != sched.Total() {
		t.Fatalf("segments sent %d distinct arrivals, want %d", len(seen), sched.Total())
	}
	for n, c := range seen {
		if c != 1 {
			t.Fatalf("arrival %d sent %d times", n, c)
		}
	}
}

func TestOpenExecutorStopsOnCancel(t *testing.T) {
	sched, _ := ConstantSchedule(10, time.Hour)
	clk := clock.NewFake(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	e := &OpenExecutor{Schedule: sched, MaxInFlight: 1, Clock: clk, Do: func(context.Context, Arrival) {
		n++
		if n == 5 {
			cancel()
		}
	}}
	var stats OpenStats
	drive(clk, func() { stats = e.Run(ctx, clk.Now()) })
	if stats.Dispatched < 5 || stats.Dispatched > 6 {
		t.Fatalf("dispatched %d after cancel at 5", stats.Dispatched)
	}
}

func TestClosedExecutorFollowsProfile(t *testing.T) {
	profile, err := NewVUProfile(0, []VUStage{{Duration: 4 * time.Second, Target: 4}, {Duration: 2 * time.Second, Target: 4}})
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Time{})
	var mu sync.Mutex
	var active []int
	vus := map[int]int{}
	e := &ClosedExecutor{Profile: profile, Segment: Segment{Index: 1, Count: 2}, Clock: clk,
		Iterate: func(ctx context.Context, vu int) {
			mu.Lock()
			vus[vu]++
			mu.Unlock()
			// 600 ms, so that no iteration ends exactly at the profile's
			// end: there the end timer's callback (its own goroutine, as on
			// the real clock) races the waking VU for the last start.
			_ = clock.Sleep(ctx, clk, 600*time.Millisecond)
		},
		Active: func(n int) { mu.Lock(); active = append(active, n); mu.Unlock() },
	}
	var stats ClosedStats
	done := make(chan struct{})
	go func() { stats = e.Run(context.Background(), clk.Now()); close(done) }()
	// Advance only once the controller and every active VU wait on the
	// clock, so no VU misses a beat.
	for running := true; running; {
		select {
		case <-done:
			running = false
			continue
		default:
		}
		mu.Lock()
		want := 2 // the controller's tick and the profile's end
		if len(active) > 0 {
			want += active[len(active)-1]
		}
		mu.Unlock()
		if clk.Waiters() < want {
			runtime.Gosched()
			continue
		}
		if d, ok := clk.NextDeadline(); ok {
			clk.Set(d)
		}
	}
	// Segment 1 of 2 owns VUs 1 and 3 of the 4.
	if stats.MaxActive != 2 || len(vus) != 2 || vus[1] == 0 || vus[3] == 0 {
		t.Fatalf("stats %+v, vus %v", stats, vus)
	}
	if !slices.Equal(active, []int{0, 1, 2, 0}) {
		t.Fatalf("active counts %v, want [0 1 2 0]", active)
	}
	// VU 1 starts at 2 s (the ramp reaches 2 of 4 VUs overall) and starts
	// 600 ms iterations until 6 s: at 2.0, 2.6, ... 5.6, 7 iterations.
	if vus[1] != 7 {
		t.Fatalf("vu 1 ran %d iterations, want 7", vus[1])
	}
}
