package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/relia-dev/relia/clock"
)

// Defaults of RetrySettings.
const (
	DefaultMaxAttempts   = 3
	DefaultRetryBase     = 100 * time.Millisecond
	DefaultRetryCap      = 10 * time.Second
	DefaultMultiplier    = 2.0
	DefaultMaxRetryAfter = time.Minute
)

// RetrySettings configures a Retry. Zero values mean the documented
// defaults; invalid values make NewRetry return an error.
type RetrySettings struct {
	// Name names the policy instance in events and errors.
	Name string
	// MaxAttempts is the most attempts per call, the first included: 1
	// means no retries. Zero means unset, the default 3; negative is an
	// error (zero attempts is not a setting a policy can honour, so zero is
	// free to mean "unset").
	MaxAttempts int
	// MaxDuration bounds the whole call: no attempt starts, and no backoff
	// sleeps, past MaxDuration after the call began. Zero means no bound
	// beyond MaxAttempts and the context; negative is an error.
	MaxDuration time.Duration
	// Base is the first backoff delay before jitter; zero means 100ms;
	// negative is an error.
	Base time.Duration
	// Cap bounds every backoff delay; zero means 10s, or Base if Base is
	// larger; below Base is an error.
	Cap time.Duration
	// Multiplier is the exponential growth per retry; zero means 2; below 1
	// is an error.
	Multiplier float64
	// Jitter is the randomisation of the delays; the zero value is
	// JitterFull.
	Jitter Jitter
	// RetryIf decides whether a failed attempt is retried; nil means the
	// default described on Retry. Results are judged through the
	// pipeline's classifier, so an HTTP 503 arrives here as the error the
	// classifier made of it. A call whose own context is done is never
	// retried, whatever RetryIf says.
	RetryIf func(error) bool
	// MaxRetryAfter is the longest server retry hint (Retry-After, a
	// rejection's RetryAfter) that Retry waits for; a longer hint ends the
	// retries. Zero means 1 minute; negative is an error.
	MaxRetryAfter time.Duration
	// Budget, when set, is a retry budget shared with the other Retry and
	// Hedge policies of the same upstream: each call deposits, each retry
	// withdraws, and a refused retry ends the call.
	Budget *RetryBudget
	// Rand is the random source of the jitter; nil means math/rand/v2's
	// top-level generator. A Retry used from several goroutines needs a
	// source that is safe for concurrent use; a seeded rand.NewPCG is not,
	// and is meant for tests and single-goroutine use.
	Rand rand.Source
	// Clock is the source of time for backoff sleeps; nil means real.
	Clock clock.Clock
	// Observer receives EventRetry per retry (Attempt is the attempt about
	// to run, Delay the wait before it), EventRejected "retry_budget_exhausted"
	// when the budget refuses a retry, and EventSuccess or EventFailure per
	// call.
	Observer Observer
}

// Retry runs the rest of the pipeline again when it fails, waiting an
// exponential backoff with jitter between attempts.
//
// By default every failure is retried except:
//
//   - the caller's context is done (cancelled or past its deadline):
//     nobody is waiting for the answer any more;
//   - ErrBreakerOpen, ErrHalfOpenFull and ErrRetryBudgetExhausted: a retry
//     cannot cure them right away and would only add load the breaker or
//     budget is there to shed.
//
// A per-attempt ErrTimeout from an inner Timeout is retried, since the
// caller's context is still live. Rejections by a rate limiter or bulkhead
// are retried, waiting at least the RetryAfter they carry.
//
// A retry hint in the error (RetryHintOf: a Retry-After header, a
// rejection's RetryAfter) makes the next wait at least the hint. A hint
// above MaxRetryAfter, or one that would end past MaxDuration or the
// context's deadline, ends the retries at once with the last error: sending
// earlier than the server asked would only be refused again.
//
// When MaxAttempts is reached, or the next backoff would run past
// MaxDuration or the context's deadline, the error matches both
// ErrRetriesExhausted and the last attempt's error (with MaxAttempts 1 too,
// so callers test one condition whatever the setting). When the Budget
// refuses a retry, the error matches both ErrRetryBudgetExhausted and the
// last attempt's error. An error that is not retried (see above) comes back
// as it is. Calls marked WithoutRetry get one attempt and their error as it
// is.
//
// A Retry is safe for concurrent use.
type Retry struct {
	name          string
	maxAttempts   int
	maxDuration   time.Duration
	backoff       BackoffSettings
	retryIf       func(error) bool
	maxRetryAfter time.Duration
	budget        *RetryBudget
	rand          rand.Source
	clock         clock.Clock
	observer      Observer
}

var _ Policy = (*Retry)(nil)

// NewRetry returns a Retry, or an error naming the invalid setting.
func NewRetry(s RetrySettings) (*Retry, error) {
	if err := s.fill(); err != nil {
		return nil, fmt.Errorf("retry %q: %w", s.Name, err)
	}
	return &Retry{
		name:          s.Name,
		maxAttempts:   s.MaxAttempts,
		maxDuration:   s.MaxDuration,
		backoff:       BackoffSettings{Base: s.Base, Cap: s.Cap, Multiplier: s.Multiplier, Jitter: s.Jitter},
		retryIf:       s.RetryIf,
		maxRetryAfter: s.MaxRetryAfter,
		budget:        s.Budget,
		rand:          s.Rand,
		clock:         clock.OrReal(s.Clock),
		observer:      s.Observer,
	}, nil
}

// fill validates s and puts the defaults into its zero fields.
func (s *RetrySettings) fill() error {
	switch {
	case s.MaxAttempts < 0:
		return fmt.Errorf("negative MaxAttempts %d", s.MaxAttempts)
	case s.MaxAttempts == 0:
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.MaxDuration < 0 {
		return fmt.Errorf("negative MaxDuration %s", s.MaxDuration)
	}
	switch {
	case s.MaxRetryAfter < 0:
		return fmt.Errorf("negative MaxRetryAfter %s", s.MaxRetryAfter)
	case s.MaxRetryAfter == 0:
		s.MaxRetryAfter = DefaultMaxRetryAfter
	}
	switch {
	case s.Base < 0:
		return fmt.Errorf("negative Base %s", s.Base)
	case s.Base == 0:
		s.Base = DefaultRetryBase
	}
	switch {
	case s.Cap < 0:
		return fmt.Errorf("negative Cap %s", s.Cap)
	case s.Cap == 0:
		s.Cap = max(DefaultRetryCap, s.Base)
	}
	if s.Multiplier == 0 {
		s.Multiplier = DefaultMultiplier
	}
	return BackoffSettings{Base: s.Base, Cap: s.Cap, Multiplier: s.Multiplier, Jitter: s.Jitter}.Validate()
}

type noRetryKey struct{}

// WithoutRetry marks a call as not retryable: Retry and Hedge policies make
// one attempt only. Use it for calls that are not idempotent.
func WithoutRetry(ctx context.Context) context.Context {
	return context.WithValue(ctx, noRetryKey{}, true)
}

// RetryAllowed reports whether ctx may be retried: false when it, or a
// parent, was marked WithoutRetry.
func RetryAllowed(ctx context.Context) bool {
	no, _ := ctx.Value(noRetryKey{}).(bool)
	return !no
}

// Run runs next, retrying failures as the settings allow.
//
// The first attempt is kept free of allocations and closures: the retry
// loop lives in retry, entered only after a failure.
func (r *Retry) Run(ctx context.Context, next Next) error {
	if r.budget != nil {
		r.budget.Deposit()
	}
	var start time.Time
	if r.maxDuration > 0 || r.observer != nil {
		start = r.clock.Now()
	}
	err := next.Call(ctx)
	if err == nil {
		if r.observer != nil {
			r.observer.Observe(Event{Kind: EventSuccess, Policy: "retry", Name: r.name, Duration: r.clock.Since(start)})
		}
		return nil
	}
	if RetryAllowed(ctx) {
		err = r.retry(ctx, next, err, start)
	}
	if r.observer != nil {
		kind := EventFailure
		if err == nil {
			kind = EventSuccess
		}
		r.observer.Observe(Event{Kind: kind, Policy: "retry", Name: r.name, Duration: r.clock.Since(start)})
	}
	return err
}

// retry is the loop after a failed first attempt. start is when the call
// began (zero when MaxDuration is unset and nobody observes).
func (r *Retry) retry(ctx context.Context, next Next, err error, start time.Time) error {
	var delay time.Duration
	for attempt := 2; ; attempt++ {
		if !r.retryable(ctx, err) {
			return err
		}
		dl, _ := ctx.Deadline()
		var serr error
		if delay, serr = r.step(err, attempt, delay, start, dl); serr != nil {
			return serr
		}
		if serr := clock.Sleep(ctx, r.clock, delay); serr != nil {
			// The caller gave up during the backoff: the attempt's error is
			// still the most useful one, but the caller must see why it
			// ended, so both match.
			return fmt.Errorf("retry %s: waiting for attempt %d: %w", r.name, attempt, errors.Join(serr, err))
		}
		err = next.Call(ctx)
		if err == nil {
			return nil
		}
	}
}

// step decides what follows a failed attempt that may be retried: the
// wait before attempt (the next one's number), or the error that ends the
// call. delay is the wait before the failed attempt, start when the call
// began and deadline the caller's (zero: none). A retry it allows is
// drawn from the budget and reported as EventRetry.
func (r *Retry) step(err error, attempt int, delay time.Duration, start, deadline time.Time) (time.Duration, error) {
	if attempt > r.maxAttempts {
		return 0, &RetriesExhaustedError{Name: r.name, Attempts: attempt - 1, Err: err}
	}
	delay = Backoff(r.backoff, attempt-1, delay, r.rand)
	if hint, ok := RetryHintOf(err); ok {
		if hint > r.maxRetryAfter {
			return 0, err
		}
		delay = max(delay, hint)
	}
	// Sleeping past the end of the call, or past the caller's deadline,
	// only to be stopped, wastes the wait: give up now.
	now := r.clock.Now()
	if r.maxDuration > 0 && !now.Add(delay).Before(start.Add(r.maxDuration)) {
		return 0, &RetriesExhaustedError{Name: r.name, Attempts: attempt - 1, Err: err, OutOfTime: true}
	}
	if !deadline.IsZero() && !now.Add(delay).Before(deadline) {
		return 0, &RetriesExhaustedError{Name: r.name, Attempts: attempt - 1, Err: err, OutOfTime: true}
	}
	if r.budget != nil && !r.budget.Withdraw() {
		if r.observer != nil {
			r.observer.Observe(Event{Kind: EventRejected, Policy: "retry", Name: r.name, Reason: "retry_budget_exhausted"})
		}
		return 0, &budgetExhaustedError{
			rejected: &RejectedError{Policy: "retry", Name: r.name, Reason: "retry_budget_exhausted", Sentinel: ErrRetryBudgetExhausted},
			err:      err,
		}
	}
	if r.observer != nil {
		r.observer.Observe(Event{Kind: EventRetry, Policy: "retry", Name: r.name, Attempt: attempt, Delay: delay})
	}
	return delay, nil
}

// RetryCall is one call to a Retry whose attempts its caller makes
// itself: the two-step form, as Breaker's Allow and Done are, for a proxy
// that cannot hand the policy a function (the gateway runs each attempt
// against a target it picks). Start begins the call; after each failed
// attempt Again says whether to try again and after how long. The
// decisions are Run's own.
type RetryCall struct {
	r       *Retry
	start   time.Time
	attempt int
	delay   time.Duration
}

// Start begins a call: the budget, if any, gets the call's deposit.
func (r *Retry) Start() RetryCall {
	if r.budget != nil {
		r.budget.Deposit()
	}
	c := RetryCall{r: r, attempt: 1}
	if r.maxDuration > 0 {
		c.start = r.clock.Now()
	}
	return c
}

// StartAt is Start for a caller that has read the clock already: now,
// the time on the Retry's clock, is when the call began, for the budget's
// deposit (the budget must keep the same clock) and for MaxDuration. It
// spares Start's clock reads.
func (r *Retry) StartAt(now time.Time) RetryCall {
	if r.budget != nil {
		r.budget.DepositAt(now)
	}
	return RetryCall{r: r, attempt: 1, start: now}
}

// Again is asked after an attempt failed with err: it returns the wait
// before the next attempt, or the error that ends the call, as Run would
// (RetryIf, MaxAttempts, backoff with jitter, a retry hint, MaxDuration,
// the deadline, the budget; zero deadline: none). The caller waits, then
// makes the attempt.
func (c *RetryCall) Again(err error, deadline time.Time) (time.Duration, error) {
	r := c.r
	if r.retryIf != nil && !r.retryIf(err) || r.retryIf == nil && !defaultRetryable(err) {
		return 0, err
	}
	c.attempt++
	d, serr := r.step(err, c.attempt, c.delay, c.start, deadline)
	c.delay = d
	return d, serr
}

// Attempts returns how many attempts the call has made or been allowed.
func (c *RetryCall) Attempts() int { return c.attempt }

// retryable reports whether err, the error of a failed attempt, may be
// retried.
func (r *Retry) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if r.retryIf != nil {
		return r.retryIf(err)
	}
	return defaultRetryable(err)
}

// defaultRetryable is Retry's judgement without RetryIf.
func defaultRetryable(err error) bool {
	return !errors.Is(err, ErrBreakerOpen) &&
		!errors.Is(err, ErrHalfOpenFull) &&
		!errors.Is(err, ErrRetryBudgetExhausted)
}

// RetriesExhaustedError is returned by Retry when no attempt succeeded and
// no more may be made. It matches ErrRetriesExhausted and, through Unwrap,
// the last attempt's error.
type RetriesExhaustedError struct {
	// Name is the Retry policy's name.
	Name string
	// Attempts is how many attempts were made.
	Attempts int
	// OutOfTime is true when the retries ended because the next backoff
	// would have run past MaxDuration or the context's deadline, before
	// MaxAttempts was reached.
	OutOfTime bool
	// Err is the last attempt's error.
	Err error
}

// Error names the attempts made and the last error.
func (e *RetriesExhaustedError) Error() string {
	s := "retry"
	if e.Name != "" {
		s += " " + e.Name
	}
	s += ": " + ErrRetriesExhausted.Error() + " after " + strconv.Itoa(e.Attempts) + " attempts"
	if e.OutOfTime {
		s += " (out of time)"
	}
	return s + ": " + e.Err.Error()
}

// Is matches ErrRetriesExhausted.
func (e *RetriesExhaustedError) Is(target error) bool { return target == ErrRetriesExhausted }

// Unwrap returns the last attempt's error.
func (e *RetriesExhaustedError) Unwrap() error { return e.Err }

// budgetExhaustedError is the last attempt's error, refused a retry by the
// budget. err comes first in Unwrap so that RetryHintOf and errors.As find
// the real failure's details before the rejection's.
type budgetExhaustedError struct {
	rejected *RejectedError
	err      error
}

func (e *budgetExhaustedError) Error() string {
	return e.rejected.Error() + ": " + e.err.Error()
}

func (e *budgetExhaustedError) Unwrap() []error { return []error{e.err, e.rejected} }
