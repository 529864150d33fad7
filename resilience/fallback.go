package resilience

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relia-dev/relia/clock"
)

// FallbackSettings configures a Fallback. The zero value replaces every
// failure with the zero T.
type FallbackSettings[T any] struct {
	// Name identifies the fallback in events and errors.
	Name string
	// Value replaces a failure when Func is nil. Its zero value is a valid
	// fallback (an empty list, say).
	Value T
	// Func, when set, computes the replacement from the failure. A nil
	// error makes the call succeed with the returned value; a non-nil error
	// becomes the call's error and the failed attempt's result is kept.
	Func func(ctx context.Context, err error) (T, error)
	// When chooses the failures the fallback replaces. Nil, with Errors
	// empty, means every failure.
	When func(error) bool
	// Errors is a shorthand for When: replace only failures that match one
	// of these with errors.Is (ErrBreakerOpen, ErrTimeout, ...). Setting
	// both When and Errors is an error.
	Errors []error
	// Clock times calls for success and failure events; nil means the real
	// clock. It is read only when an Observer is set.
	Clock clock.Clock
	// Observer receives EventFallback when a failure is replaced, and
	// EventSuccess or EventFailure for each call.
	Observer Observer
}

// Fallback replaces chosen failures with a value of its own. It is generic
// because it supplies the call's result: a Fallback[T] works only in a
// Pipeline[T], which NewPipeline and BuildPipeline check when the pipeline
// is built. Put it outermost so that it covers every other policy's
// failures, rejections included.
type Fallback[T any] struct {
	name     string
	value    T
	fn       func(ctx context.Context, err error) (T, error)
	when     func(error) bool
	clock    clock.Clock
	observer Observer
}

var _ Policy = (*Fallback[int])(nil)

// NewFallback returns a Fallback, or an error when the settings contradict
// each other.
func NewFallback[T any](s FallbackSettings[T]) (*Fallback[T], error) {
	if s.When != nil && len(s.Errors) > 0 {
		return nil, errors.New("fallback: set When or Errors, not both")
	}
	for i, e := range s.Errors {
		if e == nil {
			return nil, fmt.Errorf("fallback: Errors[%d] is nil", i)
		}
	}
	when := s.When
	if len(s.Errors) > 0 {
		when = IsAny(s.Errors...)
	}
	return &Fallback[T]{
		name:     s.Name,
		value:    s.Value,
		fn:       s.Func,
		when:     when,
		clock:    clock.OrReal(s.Clock),
		observer: s.Observer,
	}, nil
}

// IsAny returns a predicate for FallbackSettings.When that matches errors
// for which errors.Is reports true with any of targets.
func IsAny(targets ...error) func(error) bool {
	targets = append([]error(nil), targets...)
	return func(err error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
}

// Run calls next and replaces its failure when the fallback applies.
func (f *Fallback[T]) Run(ctx context.Context, next Next) error {
	var start time.Time
	if f.observer != nil {
		start = f.clock.Now()
	}
	err := next.Call(ctx)
	if err != nil && (f.when == nil || f.when(err)) {
		err = f.replace(ctx, next, err)
	}
	if f.observer != nil {
		kind := EventSuccess
		if err != nil {
			kind = EventFailure
		}
		f.observer.Observe(Event{Kind: kind, Policy: "fallback", Name: f.name, Duration: f.clock.Since(start)})
	}
	return err
}

func (f *Fallback[T]) replace(ctx context.Context, next Next, cause error) error {
	frame, ok := next.exec.(*callFrame[T])
	if !ok {
		// Only reachable when the fallback hides inside another policy that
		// BuildPipeline cannot look into; the caller still sees why.
		return fmt.Errorf("fallback %q of %T results used in a pipeline of another result type: %w", f.name, f.value, cause)
	}
	v := f.value
	if f.fn != nil {
		var err error
		if v, err = f.fn(ctx, cause); err != nil {
			return err
		}
	}
	frame.set(v)
	if f.observer != nil {
		f.observer.Observe(Event{Kind: EventFallback, Policy: "fallback", Name: f.name})
	}
	return nil
}

func (f *Fallback[T]) checkPipeline(p any) error {
	if _, ok := p.(*Pipeline[T]); !ok {
		var zero T
		return fmt.Errorf("fallback %q supplies %T results but the pipeline is a %T", f.name, zero, p)
	}
	return nil
}
