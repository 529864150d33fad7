package resilience

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		value string
		want  time.Duration
		ok    bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero", "0", 0, true},
		{"spaces", "  7 ", 7 * time.Second, true},
		{"leading zeros", "0000005", 5 * time.Second, true},
		{"one day", "86400", 24 * time.Hour, true},
		{"over a day", "86401", 0, false},
		{"huge", "99999999999999999999999", 0, false},
		{"negative", "-5", 0, false},
		{"plus sign", "+5", 0, false},
		{"fraction", "1.5", 0, false},
		{"empty", "", 0, false},
		{"blank", "   ", 0, false},
		{"garbage", "soon", 0, false},
		{"imf-fixdate", "Sun, 01 Mar 2026 12:00:30 GMT", 30 * time.Second, true},
		{"rfc850", "Sunday, 01-Mar-26 12:01:00 GMT", time.Minute, true},
		{"asctime", "Sun Mar  1 12:02:00 2026", 2 * time.Minute, true},
		{"date in past", "Sun, 01 Mar 2026 11:00:00 GMT", 0, true},
		{"date far past", "Mon, 01 Jan 0001 00:00:00 GMT", 0, true},
		{"date over a day ahead", "Tue, 03 Mar 2026 12:00:00 GMT", 0, false},
		{"date far future", "Fri, 31 Dec 9999 23:59:59 GMT", 0, false},
		{"bad date", "Sun, 32 Mar 2026 12:00:00 GMT", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.value, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.value, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "120", "86400", "86401", "-1", "", "Sun, 06 Nov 1994 08:49:37 GMT",
		"Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Fri, 31 Dec 9999 23:59:59 GMT", "1e9", "0x10"} {
		f.Add(s)
	}
	now := time.Date(1994, 11, 6, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || d > MaxRetryAfterHint {
			t.Fatalf("ParseRetryAfter(%q) = %v out of [0, %v]", s, d, MaxRetryAfterHint)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v with ok false", s, d)
		}
	})
}
