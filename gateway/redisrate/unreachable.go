package redisrate

import (
	"fmt"
	"strings"
)

// Unreachable is what a Limiter answers while Redis cannot: a choice every
// deployment has to make on purpose, so it has no default. Its zero value
// is invalid and makes New fail.
type Unreachable uint8

// The answers a Limiter can give while Redis is unreachable.
const (
	// FailOpen lets every call through: an outage of Redis never becomes
	// an outage of the service, at the price of no limit while it lasts.
	FailOpen Unreachable = iota + 1
	// FailClosed refuses every call, with reason "rate_limit_unavailable":
	// for limits that protect something more valuable than availability
	// (a paid quota, a fragile backend).
	FailClosed
	// FailLocal falls back to a token bucket in this process, at
	// Settings.LocalRate per key: each replica enforces its own limit, so
	// N replicas together let up to N times LocalRate through.
	FailLocal
)

var unreachableNames = [...]string{"", "open", "closed", "local"}

// String returns "open", "closed" or "local", the names config files use.
func (u Unreachable) String() string {
	if int(u) < len(unreachableNames) && u != 0 {
		return unreachableNames[u]
	}
	return fmt.Sprintf("Unreachable(%d)", uint8(u))
}

// ParseUnreachable reads "open", "closed" or "local" (any case), as a
// gateway config names the choice.
func ParseUnreachable(s string) (Unreachable, error) {
	for i, name := range unreachableNames {
		if i > 0 && strings.EqualFold(s, name) {
			return Unreachable(i), nil
		}
	}
	return 0, fmt.Errorf("on unreachable %q: must be open, closed or local", s)
}

// MarshalText writes the choice's name.
func (u Unreachable) MarshalText() ([]byte, error) {
	if u == 0 || int(u) >= len(unreachableNames) {
		return nil, fmt.Errorf("on unreachable %d: not a valid choice", uint8(u))
	}
	return []byte(u.String()), nil
}

// UnmarshalText reads the choice's name, as ParseUnreachable does.
func (u *Unreachable) UnmarshalText(b []byte) error {
	v, err := ParseUnreachable(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}
