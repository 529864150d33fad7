package capacity

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/promtest"
)

// backfilledPrometheus writes the gateway's request counter for a day
// with a spike into a TSDB with promtool, starts Debian's prometheus on
// it on a free loopback port, and returns its URL; it stops when the test
// ends. The counter grows at 100 req/s, at 1000 req/s from 12:00 to
// 12:10, and the day is the one before now.
func backfilledPrometheus(t *testing.T, day time.Time) string {
	t.Helper()
	promtool := promtest.Tool(t, "promtool")
	dir := t.TempDir()
	var om bytes.Buffer
	om.WriteString("# TYPE http_server_request_duration_seconds_count unknown\n")
	var n float64
	spikeFrom, spikeTo := day.Add(12*time.Hour), day.Add(12*time.Hour+10*time.Minute)
	for at := day.Add(11 * time.Hour); at.Before(day.Add(13 * time.Hour)); at = at.Add(15 * time.Second) {
		rate := 100.0
		if !at.Before(spikeFrom) && at.Before(spikeTo) {
			rate = 1000
		}
		fmt.Fprintf(&om, "http_server_request_duration_seconds_count{http_route=\"checkout\"} %v %d\n", n, at.Unix())
		n += rate * 15
	}
	om.WriteString("# EOF\n")
	src := filepath.Join(dir, "counter.om")
	if err := os.WriteFile(src, om.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", src, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	return promtest.StartOn(t, "global: {scrape_interval: 15s}\n", data, "--storage.tsdb.retention.time=30d")
}

func TestQueryTrafficFromARealPrometheus(t *testing.T) {
	t.Parallel()
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	url := backfilledPrometheus(t, day)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	from, to := day.Add(11*time.Hour+30*time.Minute), day.Add(12*time.Hour+30*time.Minute)
	tr, err := QueryTraffic(ctx, nil, url, KEDAQuery("checkout", time.Minute), from, to, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	at, peak := tr.Peak()
	if math.Abs(peak-1000) > 1 || at < 30*time.Minute || at > 32*time.Minute {
		t.Errorf("peak %v req/s at %s, want 1000 from about 30m", peak, at)
	}
	if r := tr.RateAt(10 * time.Minute); math.Abs(r-100) > 1 {
		t.Errorf("rate before the spike %v, want 100", r)
	}
	sp := tr.Spike()
	if math.Abs(sp.Factor-10) > 0.1 || sp.Rise > time.Minute {
		t.Errorf("spike %+v, want 10x within the rate's minute", sp)
	}
	// a plan for the queried peak
	p, err := NewPlan(PlanInput{Capacity: 100, Peak: peak, PeakSource: "Prometheus", Base: sp.Base})
	if err != nil {
		t.Fatal(err)
	}
	if p.ForPeak != 19 || p.ForBase != 2 { // 1000 × 1.3 / 70 = 18.6; 100 / 70 = 1.4
		t.Errorf("plan %+v", p)
	}

	// more than one series must be summed
	if _, err := QueryTraffic(ctx, nil, url, `rate(http_server_request_duration_seconds_count[1m]) or vector(1)`, from, to, time.Minute); err == nil || !strings.Contains(err.Error(), "sum() them") {
		t.Errorf("two series: %v", err)
	}
	if _, err := QueryTraffic(ctx, nil, url, `rate(nothing_here[1m])`, from, to, time.Minute); err == nil || !strings.Contains(err.Error(), "no series") {
		t.Errorf("no series: %v", err)
	}
	if _, err := QueryTraffic(ctx, nil, url, `sum(rate(`, from, to, time.Minute); err == nil || !strings.Contains(err.Error(), "bad_data") {
		t.Errorf("bad PromQL: %v", err)
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"1.5"],[1700000015,"2"]]}]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := parseRange(body, time.Unix(1700000000, 0))
		if err == nil {
			if verr := tr.Validate(); verr != nil {
				t.Fatalf("parsed an invalid curve: %v", verr)
			}
		}
	})
}
