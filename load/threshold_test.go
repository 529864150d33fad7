package load

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseThreshold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metric, expr string
		agg          string
		pct          float64
		op           Op
		value        float64
		tags         map[string]string
	}{
		{"http_req_duration", "p(99)<500", "p", 99, OpLess, 500, nil},
		{"http_req_duration", " p( 99.9 ) <= 1s", "p", 99.9, OpLessEqual, 1000, nil},
		{"http_req_duration", "avg<200", "avg", 0, OpLess, 200, nil},
		{"http_req_duration", "med<250ms", "med", 0, OpLess, 250, nil},
		{"http_req_duration{name:login}", "max<=2000", "max", 0, OpLessEqual, 2000, map[string]string{"name": "login"}},
		{"http_req_failed", "rate<0.01", "rate", 0, OpLess, 0.01, nil},
		{"http_req_failed", "rate<1%", "rate", 0, OpLess, 0.01, nil},
		{"checks", "rate>0.99", "rate", 0, OpGreater, 0.99, nil},
		{"http_reqs", "count>=100", "count", 0, OpGreaterEqual, 100, nil},
		{"http_reqs", "rate>50", "rate", 0, OpGreater, 50, nil},
		{"vus", "value===10", "value", 0, OpEqual, 10, nil},
		{"dropped_iterations", "count!=0", "count", 0, OpNotEqual, 0, nil},
	} {
		th, err := ParseThreshold(tc.metric, tc.expr)
		if err != nil {
			t.Errorf("%s %q: %v", tc.metric, tc.expr, err)
			continue
		}
		if th.Aggregation != tc.agg || th.Percentile != tc.pct || th.Op != tc.op || th.Value != tc.value {
			t.Errorf("%s %q = %+v", tc.metric, tc.expr, th)
		}
		if len(th.Tags) != len(tc.tags) {
			t.Errorf("%s: tags %v, want %v", tc.metric, th.Tags, tc.tags)
		}
		for k, v := range tc.tags {
			if th.Tags[k] != v {
				t.Errorf("%s: tag %s = %q, want %q", tc.metric, k, th.Tags[k], v)
			}
		}
	}
}

func TestParseThresholdErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		metric, expr string
		col          int
		msg          string
	}{
		{"http_req_duraton", "p(99)<500", 0, "unknown metric"},
		{"http_req_duration", "", 1, "want an aggregation"},
		{"http_req_duration", "rate<1", 1, "no aggregation \"rate\""},
		{"http_req_failed", "p(99)<1", 1, "no aggregation \"p\""},
		{"http_req_duration", "p(101)<5", 3, "percentile"},
		{"http_req_duration", "p(99<5", 2, "not closed"},
		{"http_req_duration", "p99<5", 2, "want p(N)"},
		{"http_req_duration", "p(99) ~ 5", 7, "want a comparison"},
		{"http_req_duration", "p(99)<", 7, "want a value"},
		{"http_req_duration", "p(99)< fast", 8, "want a number (milliseconds)"},
		{"http_req_duration{name}", "avg<1", 0, "want key:value"},
		{"http_req_duration{name:a", "avg<1", 0, "not closed"},
	} {
		_, err := ParseThreshold(tc.metric, tc.expr)
		if err == nil {
			t.Errorf("%s %q: no error", tc.metric, tc.expr)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s %q: error %q does not say %q", tc.metric, tc.expr, err, tc.msg)
		}
		var te *ThresholdError
		if tc.col > 0 && (!errors.As(err, &te) || te.Col != tc.col) {
			t.Errorf("%s %q: error %v, want column %d", tc.metric, tc.expr, err, tc.col)
		}
	}
}

func TestThresholdHolds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr     string
		observed float64
		want     bool
	}{
		{"p(99)<500", 499.9, true}, {"p(99)<500", 500, false},
		{"p(99)<=500", 500, true}, {"avg>10", 10, false}, {"avg>=10", 10, true},
		{"max==3", 3, true}, {"max!=3", 3, false},
	} {
		th, err := ParseThreshold("http_req_duration", tc.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := th.Holds(tc.observed); got != tc.want {
			t.Errorf("%q holds for %v = %v, want %v", tc.expr, tc.observed, got, tc.want)
		}
	}
}

func TestParseThresholdFlag(t *testing.T) {
	t.Parallel()
	th, err := ParseThresholdFlag("http_req_duration{name:login}:p(95)<200ms")
	if err != nil {
		t.Fatal(err)
	}
	if th.Metric != "http_req_duration" || th.Tags["name"] != "login" || th.Value != 200 || th.Window != 0*time.Second {
		t.Fatalf("got %+v", th)
	}
	for _, bad := range []string{"p(99)<5", "http_req_duration{name:a:p(99)<5", "http_req_duration{name:a}p(99)<5"} {
		if _, err := ParseThresholdFlag(bad); err == nil {
			t.Errorf("ParseThresholdFlag(%q) succeeded", bad)
		}
	}
}

func FuzzParseThreshold(f *testing.F) {
	for _, s := range []string{
		"http_req_duration:p(99)<500", "http_req_failed:rate<1%", "checks:rate>0.99",
		"http_req_duration{name:login}:avg<=200ms", "http_reqs:count>=1e3", "vus:value===0",
		"http_req_duration:p(", "x:y", "{:}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		th, err := ParseThresholdFlag(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if _, known := Metrics[th.Metric]; !known || th.Op == "" || th.Aggregation == "" {
			t.Fatalf("ParseThresholdFlag(%q) accepted an incomplete threshold %+v", s, th)
		}
		if th.Aggregation == "p" && (th.Percentile < 0 || th.Percentile > 100) {
			t.Fatalf("percentile out of range: %+v", th)
		}
	})
}
