package semconv_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/relia-dev/relia/internal/semconv"
)

func Example() {
	buckets, ok := semconv.Buckets(semconv.HTTPServerRequestDuration)
	fmt.Println(ok, slices.Contains(buckets, 0.2))
	_, ok = semconv.Buckets("http_requests_total")
	fmt.Println(ok)
	// Output:
	// true true
	// false
}

// TestDurationBuckets: the bounds ascend, hold OpenTelemetry's advisory
// boundaries (so that dashboards written for them still find theirs) and
// the 200 ms of relia's demo, and callers cannot change them.
func TestDurationBuckets(t *testing.T) {
	t.Parallel()
	b := semconv.DurationBuckets()
	if !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) {
		t.Fatalf("bounds %v do not strictly ascend", b)
	}
	for _, want := range []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 0.2} {
		if !slices.Contains(b, want) {
			t.Errorf("bounds %v lack %v", b, want)
		}
	}
	b[0] = 99
	if semconv.DurationBuckets()[0] == 99 {
		t.Error("DurationBuckets returned its own slice")
	}
	for _, name := range []string{semconv.HTTPServerRequestDuration, semconv.HTTPClientRequestDuration, semconv.LoadServiceDuration} {
		if got, ok := semconv.Buckets(name); !ok || !slices.Equal(got, semconv.DurationBuckets()) {
			t.Errorf("Buckets(%s) = %v, %v", name, got, ok)
		}
	}
}
