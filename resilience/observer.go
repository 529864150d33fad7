package resilience

import "time"

// EventKind says what happened in a policy.
type EventKind uint8

// The kinds of event policies report.
const (
	// EventSuccess: a call through the policy succeeded.
	EventSuccess EventKind = iota + 1
	// EventFailure: a call through the policy failed.
	EventFailure
	// EventRejected: the policy refused a call; Reason says why.
	EventRejected
	// EventStateChange: a breaker moved From one state To another.
	EventStateChange
	// EventRetry: a retry was scheduled after Delay; Attempt is its number.
	EventRetry
	// EventHedge: a hedged attempt was sent.
	EventHedge
	// EventTimeout: the timeout policy's deadline passed.
	EventTimeout
	// EventFallback: the fallback replaced a failure.
	EventFallback
	// EventLimitChange: the adaptive limit moved to Limit.
	EventLimitChange
	// EventAcquired and EventReleased: a bulkhead or limiter slot was taken
	// or given back; InFlight and Queued give the new occupancy.
	EventAcquired
	EventReleased
)

var eventKindNames = [...]string{"", "success", "failure", "rejected", "state_change", "retry", "hedge", "timeout", "fallback", "limit_change", "acquired", "released"}

// String returns the event kind's name as used in metric labels.
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is one thing a policy reports to its Observer. Only the fields that
// apply to the kind are set.
type Event struct {
	Kind EventKind
	// Policy is the kind of policy ("breaker", "retry", ...).
	Policy string
	// Name is the policy instance's name, if it has one.
	Name string
	// Reason is the rejection reason, for EventRejected.
	Reason string
	// From and To are breaker states, for EventStateChange.
	From, To State
	// Attempt is the attempt number (1 is the first call), for EventRetry and
	// EventHedge.
	Attempt int
	// Delay is the wait before the retry, for EventRetry, or before the
	// hedged attempt was sent, for EventHedge.
	Delay time.Duration
	// Duration is how long the call took, for success and failure events.
	Duration time.Duration
	// InFlight and Queued are a bulkhead's or limiter's occupancy.
	InFlight, Queued int
	// Limit is the adaptive concurrency limit, for EventLimitChange.
	Limit int
}

// Observer receives policy events. Observe is called synchronously on the
// call's goroutine, so it must be fast and safe for concurrent use; a nil
// Observer costs nothing.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to the Observer interface.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(e Event) { f(e) }

// DurationObserver is an Observer that says whether it reads
// Event.Duration. One whose ObservesDurations returns false is told of
// successes and failures with Duration zero, and the policies spare the
// clock reads that would measure it: a breaker's success path then reads
// no clock at all. resilienceprom's Observer, which counts events, is one.
// An Observer without the method is given durations.
type DurationObserver interface {
	Observer
	ObservesDurations() bool
}

// observesDurations reports whether o, set, reads Event.Duration.
func observesDurations(o Observer) bool {
	d, ok := o.(DurationObserver)
	return !ok || d.ObservesDurations()
}
