package fault

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// resultsFile returns a serialised recorder holding the latencies given,
// as a load run writes one.
func recorded(t *testing.T, latencies ...time.Duration) *outcome.Recorder {
	t.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	for i, l := range latencies {
		rec.Record(outcome.Outcome{Start: start.Add(time.Duration(i) * time.Millisecond), Latency: l, Status: 200, Class: outcome.ClassOK})
	}
	return rec
}

func TestFaultLatencySamples(t *testing.T) {
	t.Parallel()
	var lat []time.Duration
	for i := range 1000 {
		l := 10 * time.Millisecond
		if i%10 == 0 {
			l = 200 * time.Millisecond // a tail of one in ten
		}
		lat = append(lat, l)
	}
	samples, err := LatencySamples(recorded(t, lat...), 100)
	if err != nil {
		t.Fatal(err)
	}
	near := func(v, want float64) bool { return math.Abs(v-want) <= want/500 } // 3 significant digits
	fast, slow := 0, 0
	for _, v := range samples {
		switch {
		case near(v, 10):
			fast++
		case near(v, 200):
			slow++
		default:
			t.Fatalf("sample %v ms is neither recorded latency", v)
		}
	}
	if fast != 90 || slow != 10 {
		t.Fatalf("%d fast and %d slow samples, want the recorded 90:10", fast, slow)
	}
	// The samples make a valid toxic.
	lt := &LatencyToxic{Distribution: "empirical", Samples: samples}
	if err := lt.validate(); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		rec  *outcome.Recorder
		n    int
		want string
	}{
		{recorded(t, time.Millisecond), 0, "samples must be within"},
		{recorded(t, time.Millisecond), MaxEmpiricalSamples + 1, "samples must be within"},
		{recorded(t), 10, "no latencies recorded"},
		{nil, 10, "no latencies recorded"},
	} {
		if _, err := LatencySamples(tt.rec, tt.n); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LatencySamples(%d) = %v, want an error containing %q", tt.n, err, tt.want)
		}
	}
}
