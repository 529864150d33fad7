package slo

import "testing"

func TestRefines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		part, total string
		want        bool
	}{
		{`sum(rate(http_requests_total{job="api",code=~"5.."}[5m]))`, `sum(rate(http_requests_total{job="api"}[5m]))`, true},
		{`sum(rate(http_requests_total{code=~"5..", job = "api"}[5m]))`, `sum(rate(http_requests_total{job="api"}[5m]))`, true},
		{`sum(rate(http_requests_total{job="apii",code=~"5.."}[5m]))`, `sum(rate(http_requests_total{job="api"}[5m]))`, false},
		{`sum(rate(http_errors_total{job="api"}[5m]))`, `sum(rate(http_requests_total{job="api"}[5m]))`, false},
		{`sum(rate({__name__="x",a="b"}[5m]))`, `sum(rate(x[5m]))`, true},
		{`sum_over_time((count(x < 0.75))[5m:]) OR on() vector(0)`, `sum_over_time((count(x))[5m:])`, true},
		{`vector(0)`, `sum(rate(x[5m]))`, false},
		{`sum(rate(x{code="500"}[5m]))`, `sum(rate(x{code="total"}[5m]))`, false},
		{`sum by (code) (rate(x{a="1"}[5m]))`, `sum(rate(x{a="1"}[5m])) + sum(rate(y[5m]))`, true},
	} {
		if got := refines(tc.part, tc.total); got != tc.want {
			t.Errorf("refines(%s, %s) = %v, want %v", tc.part, tc.total, got, tc.want)
		}
	}
}

func TestSummed(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`sum(rate(x[5m]))`:                    `sum(rate(x[5m]))`,
		` sum (rate(x{a=")"}[5m])) `:          `sum (rate(x{a=")"}[5m]))`,
		`sum by (a) (rate(x[5m]))`:            `sum(sum by (a) (rate(x[5m])))`,
		`sum(rate(x[5m])) - sum(rate(y[5m]))`: `sum(sum(rate(x[5m])) - sum(rate(y[5m])))`,
		`rate(x[5m])`:                         `sum(rate(x[5m]))`,
		`sum(rate(x[5m])) or on() vector(0)`:  `sum(sum(rate(x[5m])) or on() vector(0))`,
		`summary_total`:                       `sum(summary_total)`,
	} {
		if got := summed(in); got != want {
			t.Errorf("summed(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestReadsSeries(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		`sum(rate(x[{{.window}}]))`:                            true,
		`sum(count_over_time(vector(1)[{{.window}}:]))`:        false,
		`vector(1) * 100`:                                      false,
		`sum by (le) (rate(x_bucket{le="0.2"}[5m] offset 1h))`: true,
		`{job="a"}`: true,
	} {
		if got := readsSeries(q); got != want {
			t.Errorf("readsSeries(%s) = %v, want %v", q, got, want)
		}
	}
}

// FuzzPromQL feeds arbitrary queries to the PromQL scanner: it must not
// panic, its selectors must lie inside the query in order, and the
// rewrite into rates must scan again with as many selectors.
func FuzzPromQL(f *testing.F) {
	for _, q := range []string{
		`sum(rate(http_requests_total{job="api",code=~"5.."}[{{.window}}]))`,
		`sum_over_time((count(x < 0.75))[{{.window}}:]) OR on() vector(0)`,
		`sum by (code) (x{a="}"}) / ignoring(le) sum(y offset 1h) * 2.5e+3`,
		`{__name__="x", a='b'}`, "histogram_fraction(0, 0.2, sum(rate(h[5m])))", `x{a="`, "((", "[",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		sels, err := vectorSelectors(q, "")
		if err != nil {
			return
		}
		last := 0
		for _, s := range sels {
			if s.start < last || s.end <= s.start || s.end > len(q) {
				t.Fatalf("selector %+v out of place in %q", s, q)
			}
			last = s.end
		}
		refines(q, q)
		summed(q)
		if rated, err := rateCounters(q); err == nil {
			again, err := vectorSelectors(rated, "")
			if err != nil || len(again) != len(sels) {
				t.Fatalf("rateCounters(%q) = %q: %d selectors, then %d (%v)", q, rated, len(sels), len(again), err)
			}
		}
	})
}
