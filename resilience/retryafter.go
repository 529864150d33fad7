package resilience

import (
	"net/http"
	"strings"
	"time"
)

// MaxRetryAfterHint is the longest Retry-After that ParseRetryAfter
// accepts. A longer one is more likely a misconfigured server or a date in
// the wrong year than advice a client should follow for a single request.
const MaxRetryAfterHint = 24 * time.Hour

// ParseRetryAfter parses the value of an HTTP Retry-After header (RFC 9110
// section 10.2.3) into a wait relative to now. The value is either
// delta-seconds (a non-negative decimal integer) or an HTTP-date: the
// IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" and the obsolete RFC 850 and
// asctime forms that recipients must accept. A date in the past means "now"
// (zero wait).
//
// It reports false for a value that is empty, malformed, negative, or
// longer than MaxRetryAfterHint. The wait is never negative.
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(value)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		// Bound the digits before converting so an absurd value cannot
		// overflow: anything longer than six digits is past a day anyway.
		if len(strings.TrimLeft(v, "0")) > 6 {
			return 0, false
		}
		var secs int64
		for i := 0; i < len(v); i++ {
			secs = secs*10 + int64(v[i]-'0')
		}
		d := time.Duration(secs) * time.Second
		if d > MaxRetryAfterHint {
			return 0, false
		}
		return d, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	d := t.Sub(now)
	if d < 0 {
		// A date already past: the server allows a retry now. Sub
		// saturates, so even a date far in the past lands here.
		return 0, true
	}
	if d > MaxRetryAfterHint {
		return 0, false
	}
	return d, true
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
