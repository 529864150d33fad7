package resilience

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// wantRejected fails the test unless err is a *RejectedError with the
// given fields that matches its sentinel and ErrRejected.
func wantRejected(t *testing.T, err error, want RejectedError) {
	t.Helper()
	var rej *RejectedError
	if !errors.As(err, &rej) {
		t.Fatalf("error %v (%T): want a *RejectedError", err, err)
	}
	if *rej != want {
		t.Errorf("rejection = %+v, want %+v", *rej, want)
	}
	if !errors.Is(err, want.Sentinel) || !errors.Is(err, ErrRejected) {
		t.Errorf("rejection %v does not match %v and ErrRejected", err, want.Sentinel)
	}
}

// drain returns the events logged so far and forgets them.
func (l *eventLog) drain() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// wantEvents fails the test unless got is want.
func wantEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events\n got %+v\nwant %+v", got, want)
	}
}

// getPanicking runs a call that panics through p and fails the test unless
// the panic reaches the caller.
func getPanicking(t *testing.T, p *Pipeline[int]) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Error("the panic did not reach the caller")
		}
	}()
	_, _ = p.Get(context.Background(), func(context.Context) (int, error) { panic("boom") })
}

// badSettings is a settings value a constructor must refuse, and what its
// error must mention.
type badSettings[S any] struct {
	name string
	s    S
	want string
}

// testBadSettings checks that build refuses every case with an error that
// starts with prefix (the policy and its name) and mentions want.
func testBadSettings[S any](t *testing.T, prefix string, build func(S) error, cases []badSettings[S]) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := build(tt.s)
			if err == nil {
				t.Fatalf("settings %+v accepted, want an error", tt.s)
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want it to start with %q and mention %q", err, prefix, tt.want)
			}
		})
	}
}

// concurrencyProbe counts the calls running inside a policy and the most
// that ever ran at once.
type concurrencyProbe struct {
	running, peak, ran atomic.Int64
}

// enter marks a call started and returns how many run now.
func (c *concurrencyProbe) enter() int64 {
	n := c.running.Add(1)
	for m := c.peak.Load(); n > m && !c.peak.CompareAndSwap(m, n); m = c.peak.Load() {
	}
	return n
}

// leave marks a call ended.
func (c *concurrencyProbe) leave() {
	c.running.Add(-1)
	c.ran.Add(1)
}

// hammer sends calls through p from workers goroutines at once, each call
// running inside a concurrencyProbe and ending with fail(n) for the n-th
// call to run (nil fail: success). It fails the test on an error other
// than fail's or a rejection matching sentinel, or when a call goes
// missing, and returns the peak concurrency and the rejections.
func hammer(t *testing.T, p *Pipeline[int], workers, calls int, sentinel error, fail func(n int64) error) (peak, rejected int64) {
	t.Helper()
	var probe concurrencyProbe
	var rejections atomic.Int64
	fn := func(context.Context) (int, error) {
		probe.enter()
		runtime.Gosched()
		probe.leave()
		if fail != nil {
			return 0, fail(probe.ran.Load())
		}
		return 1, nil
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range calls {
				_, err := p.Get(context.Background(), fn)
				switch {
				case errors.Is(err, sentinel):
					rejections.Add(1)
				case err != nil && (fail == nil || errors.Is(err, ErrRejected)):
					t.Errorf("Get: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got := probe.ran.Load() + rejections.Load(); got != int64(workers*calls) {
		t.Errorf("%d ran + %d rejected, want %d calls", probe.ran.Load(), rejections.Load(), workers*calls)
	}
	return probe.peak.Load(), rejections.Load()
}

func newTestBulkhead(t *testing.T, s BulkheadSettings) (*Bulkhead, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Time{})
	s.Clock = fc
	b, err := NewBulkhead(s)
	if err != nil {
		t.Fatalf("NewBulkhead: %v", err)
	}
	return b, fc
}

// acquireAsync starts Acquire on its own goroutine and returns where its
// outcome arrives.
func acquireAsync(ctx context.Context, b *Bulkhead) <-chan error {
	out := make(chan error, 1)
	go func() {
		p, err := b.Acquire(ctx)
		if err == nil {
			defer p.Release()
		}
		out <- err
	}()
	return out
}

func TestBulkheadSettingsInvalid(t *testing.T) {
	t.Parallel()
	testBadSettings(t, "bulkhead users: ", func(s BulkheadSettings) error {
		s.Name = "users"
		_, err := NewBulkhead(s)
		return err
	}, []badSettings[BulkheadSettings]{
		{"negative max concurrent", BulkheadSettings{MaxConcurrent: -1}, "max concurrent"},
		{"huge max concurrent", BulkheadSettings{MaxConcurrent: 1 << 40}, "max concurrent"},
		{"negative max queue", BulkheadSettings{MaxQueue: -1}, "max queue"},
		{"huge max queue", BulkheadSettings{MaxQueue: 1 << 40}, "max queue"},
		{"negative max wait", BulkheadSettings{MaxQueue: 1, MaxWait: -time.Second}, "max wait"},
		{"max wait without queue", BulkheadSettings{MaxWait: time.Second}, "without a queue"},
	})
}

func TestBulkheadRejectsWhenFull(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		s        BulkheadSettings
		capacity int
	}{
		{"default slots", BulkheadSettings{}, DefaultBulkheadMaxConcurrent},
		{"two slots", BulkheadSettings{MaxConcurrent: 2}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.s.Name = "users"
			b, _ := newTestBulkhead(t, tt.s)
			permits := make([]BulkheadPermit, tt.capacity)
			for i := range permits {
				p, err := b.Acquire(context.Background())
				if err != nil {
					t.Fatalf("acquire %d of %d: %v", i+1, tt.capacity, err)
				}
				permits[i] = p
			}
			_, err := b.Acquire(context.Background())
			wantRejected(t, err, RejectedError{Policy: "bulkhead", Name: "users", Reason: "bulkhead_full", Sentinel: ErrBulkheadFull})
			if b.InFlight() != tt.capacity || b.Queued() != 0 {
				t.Errorf("in flight %d, queued %d; want %d, 0", b.InFlight(), b.Queued(), tt.capacity)
			}
			permits[0].Release()
			p, err := b.Acquire(context.Background())
			if err != nil {
				t.Fatalf("acquire after a release: %v", err)
			}
			p.Release()
			for _, p := range permits[1:] {
				p.Release()
			}
			if b.InFlight() != 0 {
				t.Errorf("in flight %d after every release, want 0", b.InFlight())
			}
			BulkheadPermit{}.Release() // the zero permit gives back nothing
			if b.InFlight() != 0 {
				t.Errorf("zero permit changed in flight to %d", b.InFlight())
			}
		})
	}
}

func TestBulkheadQueueIsFIFO(t *testing.T) {
	t.Parallel()
	b, _ := newTestBulkhead(t, BulkheadSettings{Name: "db", MaxConcurrent: 1, MaxQueue: 3})
	first, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type grant struct {
		who int
		p   BulkheadPermit
	}
	granted := make(chan grant)
	for i := 1; i <= 3; i++ {
		go func() {
			p, err := b.Acquire(context.Background())
			if err != nil {
				t.Errorf("waiter %d: %v", i, err)
				return
			}
			granted <- grant{i, p}
		}()
		waitFor(t, func() bool { return b.Queued() == i })
	}
	_, err = b.Acquire(context.Background())
	wantRejected(t, err, RejectedError{Policy: "bulkhead", Name: "db", Reason: "bulkhead_full", Sentinel: ErrBulkheadFull})

	first.Release()
	for want := 1; want <= 3; want++ {
		g := <-granted
		if g.who != want {
			t.Fatalf("slot went to waiter %d, want %d", g.who, want)
		}
		if b.InFlight() != 1 || b.Queued() != 3-want {
			t.Errorf("after grant %d: in flight %d, queued %d; want 1, %d", want, b.InFlight(), b.Queued(), 3-want)
		}
		g.p.Release()
	}
	if b.InFlight() != 0 || b.Queued() != 0 {
		t.Errorf("in flight %d, queued %d at the end; want 0, 0", b.InFlight(), b.Queued())
	}
}

// A newcomer never overtakes a waiter: with someone queued, a call that
// arrives as a slot frees queues behind them.
func TestBulkheadNewcomerQueuesBehindWaiter(t *testing.T) {
	t.Parallel()
	b, _ := newTestBulkhead(t, BulkheadSettings{MaxConcurrent: 1, MaxQueue: 1})
	p, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waiter := acquireAsync(context.Background(), b)
	waitFor(t, func() bool { return b.Queued() == 1 })
	if _, err := b.Acquire(context.Background()); !errors.Is(err, ErrBulkheadFull) {
		t.Fatalf("newcomer with the queue full: %v, want ErrBulkheadFull", err)
	}
	p.Release()
	if err := <-waiter; err != nil {
		t.Fatalf("waiter: %v", err)
	}
}

func TestBulkheadMaxWait(t *testing.T) {
	t.Parallel()
	t.Run("expires", func(t *testing.T) {
		t.Parallel()
		var log eventLog
		b, fc := newTestBulkhead(t, BulkheadSettings{Name: "db", MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second, Observer: &log})
		p, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		waiter := acquireAsync(context.Background(), b)
		fc.BlockUntil(1)
		fc.Advance(time.Second - time.Nanosecond)
		select {
		case err := <-waiter:
			t.Fatalf("waiter gave up before MaxWait: %v", err)
		default:
		}
		fc.Advance(time.Nanosecond)
		wantRejected(t, <-waiter, RejectedError{Policy: "bulkhead", Name: "db", Reason: "bulkhead_wait_timeout", Sentinel: ErrBulkheadFull})
		if b.InFlight() != 1 || b.Queued() != 0 {
			t.Errorf("in flight %d, queued %d; want 1, 0", b.InFlight(), b.Queued())
		}
		want := []Event{
			{Kind: EventAcquired, Policy: "bulkhead", Name: "db", InFlight: 1},
			{Kind: EventRejected, Policy: "bulkhead", Name: "db", Reason: "bulkhead_wait_timeout", InFlight: 1},
		}
		wantEvents(t, log.drain(), want)
	})
	t.Run("slot in time", func(t *testing.T) {
		t.Parallel()
		b, fc := newTestBulkhead(t, BulkheadSettings{MaxConcurrent: 1, MaxQueue: 1, MaxWait: time.Second})
		p, err := b.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		waiter := acquireAsync(context.Background(), b)
		fc.BlockUntil(1)
		fc.Advance(999 * time.Millisecond)
		p.Release()
		if err := <-waiter; err != nil {
			t.Fatalf("waiter: %v", err)
		}
		if fc.Waiters() != 0 {
			t.Errorf("%d timers left pending, want the MaxWait timer stopped", fc.Waiters())
		}
	})
}

func TestBulkheadContextEndsWhileQueued(t *testing.T) {
	t.Parallel()
	b, _ := newTestBulkhead(t, BulkheadSettings{MaxConcurrent: 1, MaxQueue: 2})
	p, err := b.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := acquireAsync(ctx, b)
	waitFor(t, func() bool { return b.Queued() == 1 })
	patient := acquireAsync(context.Background(), b)
	waitFor(t, func() bool { return b.Queued() == 2 })

	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) || errors.Is(err, ErrRejected) {
		t.Fatalf("cancelled waiter: %v, want context.Canceled and no rejection", err)
	}
	if b.Queued() != 1 {
		t.Errorf("queued %d after the cancel, want 1", b.Queued())
	}
	p.Release()
	if err := <-patient; err != nil {
		t.Fatalf("the waiter behind the cancelled one: %v", err)
	}
	waitFor(t, func() bool { return b.InFlight() == 0 })

	// A context already done does not queue at all.
	p, _ = b.Acquire(context.Background())
	defer p.Release()
	if _, err := b.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with a done context: %v, want context.Canceled", err)
	}
	if b.Queued() != 0 {
		t.Errorf("queued %d, want 0", b.Queued())
	}
}

// Many goroutines through one bulkhead: never more than MaxConcurrent run
// at once, every call runs or is rejected, and no slot leaks. Run under
// -race.
func TestBulkheadNeverExceedsLimit(t *testing.T) {
	t.Parallel()
	const workers, calls, slots = 16, 200, 3
	tests := []struct {
		name          string
		queue         int
		wantRejection bool
	}{
		{"queue for everyone", workers, false},
		{"no queue", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := NewBulkhead(BulkheadSettings{MaxConcurrent: slots, MaxQueue: tt.queue})
			if err != nil {
				t.Fatal(err)
			}
			peak, rejected := hammer(t, NewPipeline[int](b), workers, calls, ErrBulkheadFull, nil)
			if peak > slots || peak < 1 {
				t.Errorf("peak concurrency %d, want 1..%d", peak, slots)
			}
			if !tt.wantRejection && rejected != 0 {
				t.Errorf("%d rejections with a queue for every worker, want 0", rejected)
			}
			if b.InFlight() != 0 || b.Queued() != 0 {
				t.Errorf("in flight %d, queued %d at the end; want 0, 0", b.InFlight(), b.Queued())
			}
		})
	}
}

// Waiters that give up at random while slots change hands: whatever the
// interleaving, no slot and no queue place leaks. Run under -race.
func TestBulkheadCancelStress(t *testing.T) {
	t.Parallel()
	b, err := NewBulkhead(BulkheadSettings{MaxConcurrent: 2, MaxQueue: 8})
	if err != nil {
		t.Fatal(err)
	}
	var probe concurrencyProbe
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				ctx, cancel := context.WithCancel(context.Background())
				if (w+i)%3 == 0 {
					go cancel()
				}
				p, err := b.Acquire(ctx)
				if err == nil {
					if n := probe.enter(); n > 2 {
						t.Errorf("%d calls hold a slot, want at most 2", n)
					}
					runtime.Gosched()
					probe.leave()
					p.Release()
				} else if !errors.Is(err, context.Canceled) && !errors.Is(err, ErrBulkheadFull) {
					t.Errorf("Acquire: %v", err)
				}
				cancel()
			}
		})
	}
	wg.Wait()
	if b.InFlight() != 0 || b.Queued() != 0 {
		t.Errorf("in flight %d, queued %d at the end; want 0, 0", b.InFlight(), b.Queued())
	}
}

func TestBulkheadObserverEvents(t *testing.T) {
	t.Parallel()
	var log eventLog
	b, _ := newTestBulkhead(t, BulkheadSettings{Name: "db", MaxConcurrent: 1, MaxQueue: 1, Observer: &log})
	p, _ := b.Acquire(context.Background())
	waiter := make(chan BulkheadPermit)
	go func() {
		p, err := b.Acquire(context.Background())
		if err != nil {
			t.Error(err)
		}
		waiter <- p
	}()
	waitFor(t, func() bool { return b.Queued() == 1 })
	_, _ = b.Acquire(context.Background())
	p.Release()
	(<-waiter).Release()
	want := []Event{
		{Kind: EventAcquired, Policy: "bulkhead", Name: "db", InFlight: 1},
		{Kind: EventRejected, Policy: "bulkhead", Name: "db", Reason: "bulkhead_full", InFlight: 1, Queued: 1},
		{Kind: EventReleased, Policy: "bulkhead", Name: "db", InFlight: 1}, // handed to the waiter
		{Kind: EventAcquired, Policy: "bulkhead", Name: "db", InFlight: 1},
		{Kind: EventReleased, Policy: "bulkhead", Name: "db"},
	}
	wantEvents(t, log.drain(), want)
}

func TestBulkheadPanicGivesSlotBack(t *testing.T) {
	t.Parallel()
	b, _ := newTestBulkhead(t, BulkheadSettings{MaxConcurrent: 1})
	p := NewPipeline[int](b)
	getPanicking(t, p)
	if b.InFlight() != 0 {
		t.Fatalf("in flight %d after a panicking call, want 0", b.InFlight())
	}
	if v, err := p.Get(context.Background(), func(context.Context) (int, error) { return 1, nil }); err != nil || v != 1 {
		t.Fatalf("Get after the panic = %d, %v; want 1, nil", v, err)
	}
}

func TestBulkheadSuccessPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	b, err := NewBulkhead(BulkheadSettings{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if a := testing.AllocsPerRun(1000, func() {
		p, err := b.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p.Release()
	}); a != 0 {
		t.Errorf("Acquire+Release: %v allocs per call, want 0", a)
	}
	pl := NewPipeline[int](b)
	fn := func(context.Context) (int, error) { return 1, nil }
	if a := testing.AllocsPerRun(1000, func() { _, _ = pl.Get(ctx, fn) }); a != 0 {
		t.Errorf("Run in a pipeline: %v allocs per call, want 0", a)
	}
}

// BenchmarkBulkhead measures the uncontended success path, Acquire then
// Release, on one goroutine and on GOMAXPROCS.
//
//	go test -run='^$' -bench=Bulkhead -benchmem ./resilience/
func BenchmarkBulkhead(b *testing.B) {
	bh, err := NewBulkhead(BulkheadSettings{MaxConcurrent: 1024})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	benchLimits(b, func() error {
		p, err := bh.Acquire(ctx)
		p.Release()
		return err
	})
}

// benchLimits runs call serially and in parallel, failing the benchmark if
// the success path ever fails.
func benchLimits(b *testing.B, call func() error) {
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := call(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := call(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
