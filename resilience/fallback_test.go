package resilience

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestFallbackByErrorClass(t *testing.T) {
	t.Parallel()
	open := &RejectedError{Policy: "breaker", Reason: "breaker_open", Sentinel: ErrBreakerOpen}
	timeout := fmt.Errorf("calling: %w", ErrTimeout)
	errFunc := errors.New("fallback failed too")
	tests := []struct {
		name      string
		settings  FallbackSettings[string]
		callErr   error
		want      string
		wantErr   error
		fallbacks int
	}{
		{name: "success untouched", settings: FallbackSettings[string]{Value: "cached"}, want: "live"},
		{name: "any failure by default", settings: FallbackSettings[string]{Value: "cached"}, callErr: errTest, want: "cached", fallbacks: 1},
		{name: "zero value is a fallback", settings: FallbackSettings[string]{}, callErr: errTest, want: "", fallbacks: 1},
		{name: "sentinel matched", settings: FallbackSettings[string]{Value: "cached", Errors: []error{ErrBreakerOpen, ErrTimeout}}, callErr: open, want: "cached", fallbacks: 1},
		{name: "wrapped sentinel matched", settings: FallbackSettings[string]{Value: "cached", Errors: []error{ErrTimeout}}, callErr: timeout, want: "cached", fallbacks: 1},
		{name: "other class passes through", settings: FallbackSettings[string]{Value: "cached", Errors: []error{ErrBreakerOpen}}, callErr: errTest, want: "live", wantErr: errTest},
		{name: "When predicate", settings: FallbackSettings[string]{Value: "cached", When: IsAny(ErrRejected)}, callErr: open, want: "cached", fallbacks: 1},
		{
			name: "Func sees the failure",
			settings: FallbackSettings[string]{Func: func(_ context.Context, err error) (string, error) {
				return "after " + err.Error(), nil
			}},
			callErr: errTest, want: "after test failure", fallbacks: 1,
		},
		{
			name: "Func error keeps the failed result",
			settings: FallbackSettings[string]{Func: func(context.Context, error) (string, error) {
				return "ignored", errFunc
			}},
			callErr: errTest, want: "live", wantErr: errFunc,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var kinds []EventKind
			tt.settings.Observer = ObserverFunc(func(e Event) { mu.Lock(); kinds = append(kinds, e.Kind); mu.Unlock() })
			fb, err := NewFallback(tt.settings)
			if err != nil {
				t.Fatal(err)
			}
			got, err := NewPipeline[string](fb).Get(context.Background(), func(context.Context) (string, error) {
				return "live", tt.callErr
			})
			if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Get = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
			n := 0
			for _, k := range kinds {
				if k == EventFallback {
					n++
				}
			}
			if n != tt.fallbacks {
				t.Errorf("%d fallback events (%v), want %d", n, kinds, tt.fallbacks)
			}
		})
	}
}

func TestFallbackDiscardsReplacedResult(t *testing.T) {
	t.Parallel()
	fb, err := NewFallback(FallbackSettings[int]{Value: 42})
	if err != nil {
		t.Fatal(err)
	}
	var discarded []int
	p := NewPipeline[int](fb).WithDiscard(func(v int) { discarded = append(discarded, v) })
	got, err := p.Get(context.Background(), func(context.Context) (int, error) { return 503, errTest })
	if got != 42 || err != nil {
		t.Fatalf("Get = %d, %v; want 42, nil", got, err)
	}
	if len(discarded) != 1 || discarded[0] != 503 {
		t.Errorf("discarded %v, want the replaced [503]", discarded)
	}
}

func TestFallbackInvalidSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    FallbackSettings[int]
	}{
		{"When and Errors", FallbackSettings[int]{When: IsAny(errTest), Errors: []error{errTest}}},
		{"nil entry in Errors", FallbackSettings[int]{Errors: []error{errTest, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if fb, err := NewFallback(tt.s); err == nil {
				t.Errorf("NewFallback = %v, nil; want an error", fb)
			}
		})
	}
}

func TestFallbackSuccessPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}

	fb, err := NewFallback(FallbackSettings[int]{Value: 1, Errors: []error{ErrTimeout}})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline[int](fb)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 2, nil }
	if allocs := testing.AllocsPerRun(1000, func() { _, _ = p.Get(ctx, fn) }); allocs != 0 {
		t.Errorf("success path allocates %.1f times per call, want 0", allocs)
	}
}
