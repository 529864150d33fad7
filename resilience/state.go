package resilience

// State is a circuit breaker's state.
type State uint8

// Breaker states.
const (
	// StateClosed: calls flow and outcomes are counted.
	StateClosed State = iota
	// StateOpen: calls are rejected until the open duration has passed.
	StateOpen
	// StateHalfOpen: a bounded number of probe calls decide whether to close.
	StateHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateOpen:
		return "open"
	case StateHalfOpen:
		return "half-open"
	}
	return "unknown"
}
