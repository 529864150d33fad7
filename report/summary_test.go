package report

import "testing"

func TestPercent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n, total int64
		want     string
	}{
		{0, 0, "n/a"},
		{0, 10, "0.00%"},
		{10, 10, "100.00%"},
		{999, 1000, "99.90%"},
		{9995, 10000, "99.95%"},
		{999999, 1000000, "99.9999%"},
		{1, 1000000, "0.0001%"},
		{1, 1 << 40, "0.000000%"},
	}
	for _, tt := range tests {
		if got := percent(tt.n, tt.total); got != tt.want {
			t.Errorf("percent(%d, %d) = %q, want %q", tt.n, tt.total, got, tt.want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		v    float64
		unit string
		want string
	}{
		{41.23, "ms", "41.2 ms"},
		{1500.3, "ms", "1.5 s"},
		{0.05, "ms", "0.05 ms"},
		{12345, "req/s", "12.3k req/s"},
		{47.9, "req/s", "47.9 req/s"},
		{0.25, "s", "250 ms"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v, tt.unit); got != tt.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tt.v, tt.unit, got, tt.want)
		}
	}
}
