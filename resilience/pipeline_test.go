package resilience

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// retryN is a minimal retrying policy for the pipeline's own tests, so they
// do not depend on the Retry policy's behaviour.
func retryN(n int) Policy {
	return PolicyFunc(func(ctx context.Context, next Next) error {
		var err error
		for i := 0; i < n; i++ {
			if err = next.Call(ctx); err == nil {
				return nil
			}
		}
		return err
	})
}

var passThrough = PolicyFunc(func(ctx context.Context, next Next) error { return next.Call(ctx) })

var errTest = errors.New("test failure")

func TestPipelineClassifier(t *testing.T) {
	t.Parallel()
	errBad := errors.New("bad status")
	classify := func(code int, err error) error {
		if err != nil {
			return err
		}
		if code >= 500 {
			return errBad
		}
		return nil
	}
	tests := []struct {
		name     string
		policies []Policy
		codes    []int
		wantCode int
		wantErr  error
		wantRuns int
	}{
		{name: "no policies, failing result", codes: []int{503}, wantCode: 503, wantErr: errBad, wantRuns: 1},
		{name: "no policies, good result", codes: []int{200}, wantCode: 200, wantRuns: 1},
		{name: "classified failure is retried", policies: []Policy{retryN(3)}, codes: []int{503, 503, 200}, wantCode: 200, wantRuns: 3},
		{name: "last failing result is kept", policies: []Policy{retryN(2)}, codes: []int{503, 502}, wantCode: 502, wantErr: errBad, wantRuns: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := NewPipeline[int](tt.policies...).WithClassifier(classify)
			runs := 0
			code, err := p.Get(context.Background(), func(context.Context) (int, error) {
				c := tt.codes[runs]
				runs++
				return c, nil
			})
			if code != tt.wantCode || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Get = %d, %v; want %d, %v", code, err, tt.wantCode, tt.wantErr)
			}
			if runs != tt.wantRuns {
				t.Errorf("fn ran %d times, want %d", runs, tt.wantRuns)
			}
		})
	}
}

func TestPipelineDiscardsSupersededResults(t *testing.T) {
	t.Parallel()
	var discarded []int
	p := NewPipeline[int](retryN(3)).WithDiscard(func(v int) { discarded = append(discarded, v) })
	n := 0
	got, err := p.Get(context.Background(), func(context.Context) (int, error) {
		n++
		if n < 3 {
			return n, errTest
		}
		return n, nil
	})
	if err != nil || got != 3 {
		t.Fatalf("Get = %d, %v; want 3, nil", got, err)
	}
	if len(discarded) != 2 || discarded[0] != 1 || discarded[1] != 2 {
		t.Errorf("discarded %v, want [1 2]: every superseded result and never the returned one", discarded)
	}
}

func TestPipelineForkAdoptRelease(t *testing.T) {
	t.Parallel()
	var discarded []string
	twoForks := PolicyFunc(func(ctx context.Context, next Next) error {
		a, b := next.Fork(), next.Fork()
		errA := a.Call(ctx)
		errB := b.Call(ctx)
		next.Adopt(b)
		a.Release()
		if errA != nil {
			return errA
		}
		return errB
	})
	p := NewPipeline[string](twoForks).WithDiscard(func(s string) { discarded = append(discarded, s) })
	n := 0
	got, err := p.Get(context.Background(), func(context.Context) (string, error) {
		n++
		return strings.Repeat("x", n), nil
	})
	if err != nil || got != "xx" {
		t.Fatalf("Get = %q, %v; want the adopted fork's result xx", got, err)
	}
	if len(discarded) != 1 || discarded[0] != "x" {
		t.Errorf("discarded %q, want the released fork's [x]", discarded)
	}
}

func TestPipelineSkipsNilPolicies(t *testing.T) {
	t.Parallel()
	var nilPolicy Policy
	p := NewPipeline[int](nil, passThrough, nilPolicy)
	if got := len(p.Policies()); got != 1 {
		t.Fatalf("Policies() has %d entries, want 1", got)
	}
	v, err := p.Get(context.Background(), func(context.Context) (int, error) { return 7, nil })
	if v != 7 || err != nil {
		t.Errorf("Get = %d, %v; want 7, nil", v, err)
	}
}

func TestPipelineRejectionWithoutCall(t *testing.T) {
	t.Parallel()
	reject := PolicyFunc(func(context.Context, Next) error {
		return &RejectedError{Policy: "test", Reason: "closed", Sentinel: ErrBulkheadFull}
	})
	p := NewPipeline[int](passThrough, reject)
	called := false
	v, err := p.Get(context.Background(), func(context.Context) (int, error) { called = true; return 1, nil })
	if called || v != 0 || !errors.Is(err, ErrBulkheadFull) || !errors.Is(err, ErrRejected) {
		t.Errorf("Get = %d, %v (fn called %v); want 0 and a bulkhead rejection without a call", v, err, called)
	}
}

func TestPipelineConcurrentUse(t *testing.T) {
	t.Parallel()
	var discards atomic.Int64
	p := NewPipeline[int](passThrough, retryN(2), passThrough).WithDiscard(func(int) { discards.Add(1) })
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				want := g*1000 + i
				first := true
				got, err := p.Get(context.Background(), func(context.Context) (int, error) {
					if first {
						first = false
						return -1, errTest
					}
					return want, nil
				})
				if err != nil || got != want {
					t.Errorf("Get = %d, %v; want %d: results crossed between calls", got, err, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := discards.Load(); got != 8*200 {
		t.Errorf("discarded %d results, want %d", got, 8*200)
	}
}

func TestPipelineGetDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}

	p := NewPipeline[int](passThrough, passThrough, passThrough)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := p.Get(ctx, fn); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Get allocates %.1f times per call with pass-through policies, want 0", allocs)
	}
}

func TestPipelineRejectsFallbackOfAnotherType(t *testing.T) {
	t.Parallel()
	fb, err := NewFallback(FallbackSettings[string]{Name: "names"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := BuildPipeline[int](passThrough, fb); err == nil || !strings.Contains(err.Error(), "policy 1") {
		t.Errorf("BuildPipeline[int] with a Fallback[string]: err = %v, want a type mismatch naming policy 1", err)
	}
	if _, err := BuildPipeline[string](fb); err != nil {
		t.Errorf("BuildPipeline[string] with a Fallback[string]: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("NewPipeline[int] with a Fallback[string] did not panic")
		}
	}()
	NewPipeline[int](fb)
}

func TestPipelineFallbackHiddenInsideAnotherPolicy(t *testing.T) {
	t.Parallel()
	fb, err := NewFallback(FallbackSettings[string]{Value: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// A wrapper hides the fallback from BuildPipeline's check; the mismatch
	// must still come back as an error, not a panic or a wrong result.
	wrapped := PolicyFunc(func(ctx context.Context, next Next) error { return fb.Run(ctx, next) })
	v, err := NewPipeline[int](wrapped).Get(context.Background(), func(context.Context) (int, error) { return 0, errTest })
	if v != 0 || !errors.Is(err, errTest) || !strings.Contains(err.Error(), "another result type") {
		t.Errorf("Get = %d, %v; want the original failure wrapped with a type mismatch", v, err)
	}
}

// BenchmarkPipelineGet is the pipeline's own cost: five pass-through
// policies and a fallback on the success path.
func BenchmarkPipelineGet(b *testing.B) {
	fb, err := NewFallback(FallbackSettings[int]{Value: -1})
	if err != nil {
		b.Fatal(err)
	}
	p := NewPipeline[int](fb, passThrough, passThrough, passThrough, passThrough)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		if v, err := p.Get(ctx, fn); v != 1 || err != nil {
			b.Fatalf("Get = %d, %v", v, err)
		}
	}
}
