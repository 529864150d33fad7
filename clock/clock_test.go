package clock_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestFakeTimersFireInDeadlineOrder(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(time.Time{})
	start := c.Now()
	late := c.NewTimer(2 * time.Second)
	early := c.NewTimer(time.Second)
	c.Advance(1500 * time.Millisecond)
	select {
	case got := <-early.C():
		if want := start.Add(time.Second); !got.Equal(want) {
			t.Fatalf("early fired at %v, want %v", got, want)
		}
	default:
		t.Fatal("early timer did not fire")
	}
	select {
	case <-late.C():
		t.Fatal("late timer fired early")
	default:
	}
	if c.Waiters() != 1 {
		t.Fatalf("waiters = %d, want 1", c.Waiters())
	}
	c.Advance(time.Second)
	<-late.C()
	if got, want := c.Now(), start.Add(2500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("now = %v, want %v", got, want)
	}
}

func TestFakeStopAndReset(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(time.Time{})
	var fired atomic.Int32
	done := make(chan struct{}, 2)
	tm := c.AfterFunc(time.Second, func() { fired.Add(1); done <- struct{}{} })
	if !tm.Stop() {
		t.Fatal("Stop of a pending timer reported false")
	}
	if tm.Stop() {
		t.Fatal("second Stop reported true")
	}
	c.Advance(time.Hour)
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a stopped timer reported it active")
	}
	c.Advance(time.Second)
	<-done
	if fired.Load() != 1 {
		t.Fatalf("fired %d times, want 1", fired.Load())
	}
}

func TestSleepHonoursContext(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- clock.Sleep(ctx, c, time.Minute) }()
	c.BlockUntil(1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}

	go func() { errc <- clock.Sleep(context.Background(), c, time.Minute) }()
	c.BlockUntil(1)
	c.Advance(time.Minute)
	if err := <-errc; err != nil {
		t.Fatalf("Sleep = %v, want nil", err)
	}
	if err := clock.Sleep(context.Background(), c, 0); err != nil {
		t.Fatalf("Sleep(0) = %v", err)
	}
}

func TestRealClock(t *testing.T) {
	t.Parallel()
	c := clock.OrReal(nil)
	before := time.Now()
	if c.Now().Before(before) {
		t.Fatal("real clock went backwards")
	}
	tm := c.NewTimer(time.Millisecond)
	<-tm.C()
	if c.Since(before) < time.Millisecond {
		t.Fatal("timer fired before its duration")
	}
}
