package config

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5s", want: 1500 * time.Millisecond},
		{in: "7d", want: 7 * Day},
		{in: "4w", want: 28 * Day},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "1y", want: 365 * Day},
		{in: "0", want: 0},
		{in: "10us", want: 10 * time.Microsecond},
		{in: "10µs", want: 10 * time.Microsecond},
		{in: "-5s", err: "negative"},
		{in: "5", err: "needs a unit"},
		{in: "", err: "empty"},
		{in: "5x", err: "unknown unit"},
		{in: "ms", err: "expected a number"},
		{in: "1..5s", err: "bad number"},
		{in: "300000000y", err: "too long"},
	} {
		got, err := ParseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{5 * time.Minute, "5m"},
		{90 * time.Minute, "1h30m"},
		{30 * Day, "30d"},
		{28 * Day, "4w"},
		{7 * Day, "1w"},
		{8 * Day, "8d"},
		{3 * Day, "3d"},
		{250 * time.Millisecond, "250ms"},
		{1500 * time.Microsecond, "1ms500µs"},
		{-time.Second, "-1s"},
		{365 * Day, "1y"},
	} {
		got := FormatDuration(tc.in)
		if got != tc.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.in < 0 {
			continue
		}
		back, err := ParseDuration(got)
		if err != nil || back != tc.in {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", tc.in, back, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Size
		err  string
	}{
		{in: "1MiB", want: 1 << 20},
		{in: "512KB", want: 512000},
		{in: "100B", want: 100},
		{in: "100", want: 100},
		{in: "1.5KiB", want: 1536},
		{in: "2 GiB", want: 2 << 30},
		{in: "-1KB", err: "negative"},
		{in: "1.5B", err: "whole number"},
		{in: "1XB", err: "unknown unit"},
		{in: "MiB", err: "expected a number"},
		{in: "99999999TiB", err: "too large"},
	} {
		got, err := ParseSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseSize(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseSize(got.String()); err != nil || back != got {
			t.Errorf("ParseSize(%q.String() = %q) = %v, %v", tc.in, got.String(), back, err)
		}
	}
}

func TestParseRatio(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want float64
		str  string
		err  string
	}{
		// The percentage is exactly the float64 nearest to the decimal
		// written, unlike 99.9/100.
		{in: "99.9%", want: 0.999, str: "99.9%"},
		{in: "0.999", want: 0.999, str: "99.9%"},
		{in: "99.95%", want: 0.9995, str: "99.95%"},
		{in: "5%", want: 0.05, str: "5%"},
		{in: "100%", want: 1, str: "100%"},
		{in: "0.5%", want: 0.005, str: "0.5%"},
		{in: "0", want: 0, str: "0%"},
		{in: "150%", err: "not in [0, 1]"},
		{in: "1.5", err: "not in [0, 1]"},
		{in: "-0.1", err: "not in [0, 1]"},
		{in: "abc", err: "expected a number"},
		{in: "NaN", err: "expected a number"},
	} {
		got, err := ParseRatio(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseRatio(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || float64(got) != tc.want {
			t.Errorf("ParseRatio(%q) = %v, %v; want %v", tc.in, float64(got), err, tc.want)
		}
		if got.String() != tc.str {
			t.Errorf("Ratio(%v).String() = %q, want %q", tc.want, got.String(), tc.str)
		}
	}
}
