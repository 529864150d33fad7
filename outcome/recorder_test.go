package outcome

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0).UTC() // on a second (and minute) boundary

func newRecorder(t testing.TB, o Options) *Recorder {
	t.Helper()
	r, err := NewRecorder(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cellTop is what Max and Quantile report for d: its cell's highest value.
func cellTop(d time.Duration) time.Duration { return fromMicros(cellHigh(cellOf(micros(d)))) }

// diffSummary returns how got differs from want, or "" if in nothing.
func diffSummary(got, want Summary) string {
	var diffs []string
	check := func(name string, ok bool) {
		if !ok {
			diffs = append(diffs, name)
		}
	}
	check("From", got.From.Equal(want.From))
	check("To", got.To.Equal(want.To))
	check("Total", got.Total == want.Total)
	check("ByClass", got.ByClass == want.ByClass)
	check("ByStatusClass", got.ByStatusClass == want.ByStatusClass)
	check("BytesIn", got.BytesIn == want.BytesIn)
	check("BytesOut", got.BytesOut == want.BytesOut)
	check("Clamped", got.Clamped == want.Clamped)
	check("Latency", sameCells(got.Latency, want.Latency))
	check("ServiceTime", sameCells(got.ServiceTime, want.ServiceTime))
	return strings.Join(diffs, ", ")
}

// sameRecorders fails t unless a and b answer every query alike.
func sameRecorders(t *testing.T, a, b *Recorder) {
	t.Helper()
	if d := diffSummary(a.Total(), b.Total()); d != "" {
		t.Errorf("totals differ in %s", d)
	}
	sa, sb := a.Series(), b.Series()
	if len(sa) != len(sb) {
		t.Fatalf("series have %d and %d buckets", len(sa), len(sb))
	}
	for i := range sa {
		if d := diffSummary(sa[i].Summary, sb[i].Summary); d != "" {
			t.Errorf("bucket %d (%s) differs in %s", i, sa[i].From, d)
		}
	}
	ca, cb := a.StatusCodes(), b.StatusCodes()
	if len(ca) != len(cb) {
		t.Errorf("status codes differ: %v and %v", ca, cb)
	}
	for code, n := range ca {
		if cb[code] != n {
			t.Errorf("status %d: %d and %d", code, n, cb[code])
		}
	}
	if a.Options() != b.Options() {
		t.Errorf("options differ: %+v and %+v", a.Options(), b.Options())
	}
}

// mixedOutcomes returns n outcomes over the given seconds after t0 with
// every class, statuses, service times, clamped latencies and bytes.
func mixedOutcomes(n, seconds int, seed uint64) []Outcome {
	rng := rand.New(rand.NewPCG(seed, 99))
	statuses := []int{200, 200, 200, 201, 204, 301, 404, 429, 500, 503, 0, 99, 600}
	out := make([]Outcome, n)
	for i := range out {
		o := Outcome{
			Start:    t0.Add(time.Duration(rng.Int64N(int64(seconds) * int64(time.Second)))),
			Latency:  time.Duration(20e6 * math.Exp(0.8*rng.NormFloat64())),
			Status:   statuses[rng.IntN(len(statuses))],
			Class:    Class(rng.IntN(int(NumClasses))),
			BytesIn:  rng.Int64N(4096),
			BytesOut: rng.Int64N(512),
			Attempt:  1 + rng.IntN(3),
			Name:     "checkout",
		}
		switch rng.IntN(8) {
		case 0:
			o.ServiceTime = o.Latency - time.Duration(rng.Int64N(int64(time.Millisecond)))
		case 1:
			o.Latency = 90 * time.Second // above the default MaxLatency
		}
		out[i] = o
	}
	return out
}

func TestNewRecorderOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      Options
		want    Options
		wantErr string
	}{
		{Options{}, Options{BucketWidth: time.Second, MaxLatency: time.Minute}, ""},
		{Options{BucketWidth: 10 * time.Second, MaxLatency: time.Hour}, Options{BucketWidth: 10 * time.Second, MaxLatency: time.Hour}, ""},
		{Options{BucketWidth: time.Millisecond, MaxLatency: time.Microsecond}, Options{BucketWidth: time.Millisecond, MaxLatency: time.Microsecond}, ""},
		{Options{BucketWidth: -time.Second}, Options{}, "bucket width -1s is negative"},
		{Options{BucketWidth: time.Microsecond}, Options{}, "below 1ms"},
		{Options{MaxLatency: -1}, Options{}, "max latency -1ns is negative"},
		{Options{MaxLatency: 999}, Options{}, "below the histograms' 1µs resolution"},
	}
	for _, tt := range tests {
		r, err := NewRecorder(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewRecorder(%+v) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewRecorder(%+v): %v", tt.in, err)
			continue
		}
		if got := r.Options(); got != tt.want {
			t.Errorf("NewRecorder(%+v).Options() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	var zero Recorder
	if got := zero.Options(); got != (Options{BucketWidth: DefaultBucketWidth, MaxLatency: DefaultMaxLatency}) {
		t.Errorf("zero Recorder's options = %+v", got)
	}
}

func TestBucketAlignment(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		width  time.Duration
		starts []time.Time
		want   []time.Time // bucket starts, in order
	}{
		{"second edges", time.Second,
			[]time.Time{t0.Add(999_999_999), t0.Add(time.Second), t0, t0.Add(1500 * time.Millisecond)},
			[]time.Time{t0, t0.Add(time.Second)}},
		{"epoch aligned, not first-outcome aligned", 10 * time.Second,
			[]time.Time{t0.Add(7 * time.Second), t0.Add(12 * time.Second)},
			[]time.Time{t0, t0.Add(10 * time.Second)}},
		{"quarter seconds", 250 * time.Millisecond,
			[]time.Time{t0.Add(260 * time.Millisecond), t0.Add(249 * time.Millisecond)},
			[]time.Time{t0, t0.Add(250 * time.Millisecond)}},
		{"before 1970 rounds down", time.Second,
			[]time.Time{time.Unix(-1, 500_000_000), time.Unix(0, 0)},
			[]time.Time{time.Unix(-1, 0), time.Unix(0, 0)}},
		{"zero start counts at the epoch", time.Second,
			[]time.Time{{}},
			[]time.Time{time.Unix(0, 0)}},
		{"far apart", time.Second,
			[]time.Time{t0.Add(1000 * time.Hour), t0},
			[]time.Time{t0, t0.Add(1000 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRecorder(t, Options{BucketWidth: tt.width})
			for _, s := range tt.starts {
				r.Record(Outcome{Start: s, Latency: time.Millisecond})
			}
			series := r.Series()
			if len(series) != len(tt.want) {
				t.Fatalf("got %d buckets, want %d", len(series), len(tt.want))
			}
			for i, b := range series {
				if !b.From.Equal(tt.want[i]) || !b.To.Equal(tt.want[i].Add(tt.width)) {
					t.Errorf("bucket %d covers [%s, %s), want [%s, +%s)", i, b.From, b.To, tt.want[i], tt.width)
				}
			}
			first, last, ok := r.Span()
			if !ok || !first.Equal(tt.want[0]) || !last.Equal(tt.want[len(tt.want)-1]) {
				t.Errorf("Span() = %s, %s, %v; want %s, %s", first, last, ok, tt.want[0], tt.want[len(tt.want)-1])
			}
		})
	}
	if _, _, ok := newRecorder(t, Options{}).Span(); ok {
		t.Error("an empty recorder has a span")
	}
}

func TestWindow(t *testing.T) {
	t.Parallel()
	r := newRecorder(t, Options{})
	for s := range 10 { // s+1 outcomes in second s
		for range s + 1 {
			r.Record(Outcome{Start: t0.Add(time.Duration(s)*time.Second + 300*time.Millisecond), Latency: time.Duration(s+1) * time.Millisecond})
		}
	}
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	tests := []struct {
		name     string
		from, to time.Time
		want     int64
	}{
		{"whole buckets", sec(3), sec(6), 4 + 5 + 6},
		{"from inside a bucket skips it", sec(3.5), sec(6), 5 + 6},
		{"to just past a start includes it", sec(3), sec(6.000000001), 4 + 5 + 6 + 7},
		{"to on a start excludes it", sec(3), sec(3), 0},
		{"open start", time.Time{}, sec(2), 1 + 2},
		{"open end", sec(8), time.Time{}, 9 + 10},
		{"everything", time.Time{}, time.Time{}, 55},
		{"before the data", sec(-100), sec(0), 0},
		{"after the data", sec(10), sec(100), 0},
		{"reversed", sec(6), sec(3), 0},
	}
	for _, tt := range tests {
		w := r.Window(tt.from, tt.to)
		if w.Total != tt.want || w.Latency.Count() != tt.want {
			t.Errorf("%s: Window total %d, latency count %d; want %d", tt.name, w.Total, w.Latency.Count(), tt.want)
		}
	}
	w := r.Window(sec(3), sec(6))
	if !w.From.Equal(sec(3)) || !w.To.Equal(sec(6)) {
		t.Errorf("window [3s, 6s) reports [%s, %s)", w.From, w.To)
	}
	if got, want := w.Latency.Max(), cellTop(6*time.Millisecond); got != want {
		t.Errorf("window [3s, 6s) max latency %v, want %v", got, want)
	}
	open := r.Window(time.Time{}, time.Time{})
	if d := diffSummary(open, r.Total()); d != "" {
		t.Errorf("open window differs from Total in %s", d)
	}
	if !open.From.Equal(sec(0)) || !open.To.Equal(sec(10)) {
		t.Errorf("open window reports [%s, %s), want the span [0s, 10s)", open.From, open.To)
	}
}

func TestSummaryCounts(t *testing.T) {
	t.Parallel()
	r := newRecorder(t, Options{MaxLatency: time.Second})
	for _, o := range []Outcome{
		{Latency: 10 * time.Millisecond, Status: 200, BytesIn: 100, BytesOut: 10},
		{Latency: 20 * time.Millisecond, Status: 503, Class: ClassStatus, BytesIn: 50, BytesOut: 10},
		{Latency: 5 * time.Second, Class: ClassTimeout, BytesOut: 10}, // clamped to 1s
		{Class: ClassDropped},
		{Latency: time.Millisecond, Status: 200, Class: ClassCheck, BytesIn: -5},
		{Latency: time.Millisecond, Status: 700, Class: Class(200)}, // undefined: counts as other, no status
	} {
		o.Start = t0
		r.Record(o)
	}
	s := r.Total()
	var wantClass [NumClasses]int64
	wantClass[ClassOK], wantClass[ClassStatus], wantClass[ClassTimeout] = 1, 1, 1
	wantClass[ClassDropped], wantClass[ClassCheck], wantClass[ClassOther] = 1, 1, 1
	if s.Total != 6 || s.ByClass != wantClass {
		t.Errorf("Total %d, ByClass %v; want 6, %v", s.Total, s.ByClass, wantClass)
	}
	if want := [6]int64{3, 0, 2, 0, 0, 1}; s.ByStatusClass != want {
		t.Errorf("ByStatusClass %v, want %v", s.ByStatusClass, want)
	}
	if s.BytesIn != 150 || s.BytesOut != 30 || s.Clamped != 1 {
		t.Errorf("bytes in %d, out %d, clamped %d; want 150, 30, 1", s.BytesIn, s.BytesOut, s.Clamped)
	}
	if s.Latency.Count() != 5 || s.ServiceTime.Count() != 5 {
		t.Errorf("histograms count %d and %d, want 5 (every outcome but the dropped one)", s.Latency.Count(), s.ServiceTime.Count())
	}
	if got := s.Latency.Max(); got != cellTop(time.Second) {
		t.Errorf("max latency %v, want the 1s maximum's cell", got)
	}
	if got := r.StatusCodes(); len(got) != 2 || got[200] != 2 || got[503] != 1 {
		t.Errorf("StatusCodes() = %v, want 200:2 503:1", got)
	}
	good, total := s.Good(nil)
	if good != 1 || total != 6 {
		t.Errorf("Good(nil) = %d/%d, want 1/6", good, total)
	}
	// An SLI that forgives dropped arrivals and failed checks.
	good, _ = s.Good(func(c Class) bool { return c == ClassOK || c == ClassDropped || c == ClassCheck })
	if good != 3 {
		t.Errorf("Good(ok, dropped, check) = %d, want 3", good)
	}
}

func TestServiceTime(t *testing.T) {
	t.Parallel()
	r := newRecorder(t, Options{})
	for i := range 100 {
		lat := time.Duration(10+i) * time.Millisecond
		o := Outcome{Start: t0, Latency: lat}
		switch i % 4 {
		case 0:
			o.ServiceTime = lat // the same as 0
		case 1:
			o.ServiceTime = lat - 5*time.Millisecond // waited 5ms for a worker
		}
		r.Record(o)
	}
	s := r.Total()
	var wantLat, wantSvc Histogram
	for i := range 100 {
		lat := time.Duration(10+i) * time.Millisecond
		wantLat.Record(lat)
		if i%4 == 1 {
			wantSvc.Record(lat - 5*time.Millisecond)
		} else {
			wantSvc.Record(lat)
		}
	}
	if !sameCells(s.Latency, &wantLat) || !sameCells(s.ServiceTime, &wantSvc) {
		t.Errorf("latency p50 %v (want %v), service time p50 %v (want %v)",
			s.Latency.Quantile(0.5), wantLat.Quantile(0.5), s.ServiceTime.Quantile(0.5), wantSvc.Quantile(0.5))
	}
}

func TestMergeExact(t *testing.T) {
	t.Parallel()
	for _, seconds := range []int{30, 2} { // 2: buckets past their logs, into dense cells
		outcomes := mixedOutcomes(20_000, seconds, 1)
		all := newRecorder(t, Options{})
		for _, o := range outcomes {
			all.Record(o)
		}
		mergeParts(t, outcomes, all)
	}
	// Cells with more outcomes than a log entry holds.
	same := make([]Outcome, 3*maxLogCount)
	for i := range same {
		same[i] = Outcome{Start: t0, Latency: 10 * time.Millisecond, Status: 200}
	}
	all := newRecorder(t, Options{})
	for _, o := range same {
		all.Record(o)
	}
	mergeParts(t, same, all)
}

// mergeParts checks that recorders fed disjoint shares of outcomes merge
// into a recorder that answers like all, which was fed them all.
func mergeParts(t *testing.T, outcomes []Outcome, all *Recorder) {
	t.Helper()
	for _, n := range []int{1, 2, 7} {
		parts := make([]*Recorder, n)
		for i := range parts {
			parts[i] = newRecorder(t, Options{})
		}
		for i, o := range outcomes {
			parts[i%n].Record(o)
		}
		var merged Recorder // the zero Recorder has the default options
		for _, p := range parts {
			if err := merged.Merge(p); err != nil {
				t.Fatal(err)
			}
		}
		sameRecorders(t, &merged, all)
	}
}

func TestMergeErrors(t *testing.T) {
	t.Parallel()
	r := newRecorder(t, Options{})
	tests := []struct {
		name  string
		other *Recorder
		want  string
	}{
		{"itself", r, "into itself"},
		{"other width", newRecorder(t, Options{BucketWidth: 10 * time.Second}), "bucket widths differ"},
		{"higher max latency", newRecorder(t, Options{MaxLatency: 2 * time.Minute}), "max latency 2m0s is above"},
	}
	for _, tt := range tests {
		if err := r.Merge(tt.other); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Merge error = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	// A lower maximum fits: its cells are a subset.
	low := newRecorder(t, Options{MaxLatency: time.Second})
	low.Record(Outcome{Start: t0, Latency: time.Hour})
	if err := r.Merge(low); err != nil {
		t.Fatal(err)
	}
	if err := r.Merge(nil); err != nil {
		t.Fatal(err)
	}
	if s := r.Total(); s.Total != 1 || s.Clamped != 1 || s.Latency.Max() != cellTop(time.Second) {
		t.Errorf("after merging: total %d, clamped %d, max %v; want 1, 1, 1s", s.Total, s.Clamped, s.Latency.Max())
	}
}

func TestConcurrentRecord(t *testing.T) {
	t.Parallel()
	const goroutines, each = 16, 2000
	r := newRecorder(t, Options{})
	outcomes := mixedOutcomes(each, 1, 3) // one bucket: stripes fill their logs and go dense
	var writers, reader sync.WaitGroup
	done := make(chan struct{})
	var seen int64
	reader.Go(func() { // queries while the writers record must be safe
		for {
			select {
			case <-done:
				return
			default:
			}
			s := r.Total()
			if s.Total < seen {
				t.Errorf("mid-run: total went down from %d to %d", seen, s.Total)
			}
			seen = s.Total
			r.Series()
			r.StatusCodes()
			runtime.Gosched()
		}
	})
	for range goroutines {
		writers.Go(func() {
			for _, o := range outcomes {
				r.Record(o)
			}
		})
	}
	writers.Wait()
	close(done)
	reader.Wait()

	want := newRecorder(t, Options{})
	for range goroutines {
		for _, o := range outcomes {
			want.Record(o)
		}
	}
	sameRecorders(t, r, want)
	if got := r.Total().Total; got != goroutines*each {
		t.Errorf("recorded %d outcomes, want %d", got, goroutines*each)
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	r := newRecorder(t, Options{})
	outcomes := benchOutcomes(1024) // over 2 buckets
	// A bucket allocates as it fills: the bucket itself, the goroutine's
	// stripe, log segments of 256 outcomes up to 2048, then 1 KB dense
	// chunks as latencies reach them. Amortised, that is little:
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 10 {
		for _, o := range outcomes {
			r.Record(o)
		}
	}
	runtime.ReadMemStats(&after)
	if perRecord := float64(after.Mallocs-before.Mallocs) / 10240; perRecord > 0.05 {
		t.Errorf("filling buckets allocates %.4f times per Record, want at most 0.05", perRecord)
	}
	// Once the buckets are full (logs and the chunks in use allocated),
	// Record allocates nothing at all.
	runtime.ReadMemStats(&before)
	for range 10 {
		for _, o := range outcomes {
			r.Record(o)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.Mallocs - before.Mallocs; n != 0 {
		t.Errorf("Record allocated %d times in 10240 calls into full buckets, want 0", n)
	}
}

// TestBucketMemory pins the memory a typical bucket costs: 1000 outcomes
// a second, log-normal around 20ms (95% between 7 and 53ms), one in four
// with a different service time.
func TestBucketMemory(t *testing.T) {
	const buckets, perBucket = 60, 1000
	outcomes := benchOutcomes(perBucket)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := newRecorder(t, Options{})
	for s := range buckets {
		for _, o := range outcomes {
			o.Start = t0.Add(time.Duration(s) * time.Second)
			r.Record(o)
		}
	}
	runtime.ReadMemStats(&after)
	// Everything allocated while recording is held by the recorder.
	perBucketBytes := (after.TotalAlloc - before.TotalAlloc) / buckets
	t.Logf("%d bytes per bucket, %.1f MB per hour of 1s buckets", perBucketBytes, float64(perBucketBytes)*3600/1e6)
	if perBucketBytes > 8<<10 {
		t.Errorf("a bucket of %d outcomes costs %d bytes, want at most 8 KiB", perBucket, perBucketBytes)
	}
	if got := r.Total().Total; got != buckets*perBucket {
		t.Errorf("recorded %d outcomes, want %d", got, buckets*perBucket)
	}
}
