package report

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// RecorderStats summarises the recorder's buckets that overlap [from,
// to) (zero bounds are open) as headline figures:
// requests sent (dropped arrivals are counted apart, as never sent), the
// mean throughput of sent requests, availability by the recorder's
// default rule (good/total over every outcome, dropped ones included, as
// an SLO counts them), and p50, p95, p99 and max latency. The throughput
// divides by to - from when both are given, the length of the run, so it
// agrees with the load summary's req/s and with the mean of the
// Throughput chart; a bare recorder, with no run bounds, divides by its
// buckets' span. The figures carry no pass/fail status: that is the
// verdict's to give.
func RecorderStats(rec *outcome.Recorder, from, to time.Time) []Stat {
	w := overlapping(rec, from, to)
	if w.Total == 0 {
		return []Stat{{Label: "Requests", Value: "0"}}
	}
	good, total := w.Good(nil)
	dropped := w.ByClass[outcome.ClassDropped]
	sent := total - dropped
	span := w.To.Sub(w.From)
	if !from.IsZero() && !to.IsZero() {
		span = to.Sub(from)
	}
	note := "over " + span.Round(time.Millisecond).String()
	if dropped > 0 {
		note += ", " + strconv.FormatInt(dropped, 10) + " dropped unsent"
	}
	stats := []Stat{
		{Label: "Requests", Value: strconv.FormatInt(sent, 10), Note: note},
		{Label: "Throughput", Value: formatValue(float64(sent)/span.Seconds(), "req/s"), Note: "mean"},
		{Label: "Availability", Value: percent(good, total), Note: strconv.FormatInt(total-good, 10) + " failed"},
	}
	for _, q := range []struct {
		label string
		q     float64
	}{{"p50 latency", 0.5}, {"p95 latency", 0.95}, {"p99 latency", 0.99}, {"max latency", 1}} {
		v := "n/a"
		if w.Latency.Count() > 0 {
			v = formatValue(float64(w.Latency.Quantile(q.q))/float64(time.Millisecond), "ms")
		}
		stats = append(stats, Stat{Label: q.label, Value: v})
	}
	return stats
}

// StatusCodeTable lists responses by exact HTTP status code, as
// Recorder.StatusCodes counts them, with their share of the responses.
// Codes that ClassifyResponse counts as failures (5xx, 429) are failing
// rows; other 4xx codes are warnings.
func StatusCodeTable(codes map[int]int64) Table {
	t := Table{Title: "Responses by status code", Columns: []string{"status", "responses", "share"}}
	var total int64
	keys := make([]int, 0, len(codes))
	for c, n := range codes {
		keys = append(keys, c)
		total += n
	}
	slices.Sort(keys)
	for _, c := range keys {
		t.Rows = append(t.Rows, []string{strconv.Itoa(c) + " " + http.StatusText(c), strconv.FormatInt(codes[c], 10), percent(codes[c], total)})
		st := ""
		switch {
		case outcome.ClassifyResponse(c, nil).Failed():
			st = StatusFail
		case c >= 400:
			st = StatusWarn
		}
		t.RowStatus = append(t.RowStatus, st)
	}
	return t
}

// RecorderTables breaks the recorder's buckets that overlap [from, to)
// down by outcome class and by HTTP status class, with counts and shares;
// failed classes are marked as failing rows so they stand out.
func RecorderTables(rec *outcome.Recorder, from, to time.Time) []Table {
	w := overlapping(rec, from, to)
	classes := Table{Title: "Outcomes by class", Columns: []string{"class", "requests", "share"}}
	for c, n := range w.ByClass {
		if n == 0 {
			continue
		}
		status := ""
		if outcome.Class(c).Failed() {
			status = StatusFail
		}
		classes.Rows = append(classes.Rows, []string{outcome.Class(c).String(), strconv.FormatInt(n, 10), percent(n, w.Total)})
		classes.RowStatus = append(classes.RowStatus, status)
	}
	statuses := Table{Title: "Responses by status", Columns: []string{"status", "requests", "share"}}
	for sc, n := range w.ByStatusClass {
		if n == 0 {
			continue
		}
		name := "no response"
		if sc > 0 {
			name = strconv.Itoa(sc) + "xx"
		}
		statuses.Rows = append(statuses.Rows, []string{name, strconv.FormatInt(n, 10), percent(n, w.Total)})
	}
	return []Table{classes, statuses}
}

// percent prints n/total with enough digits to tell 99.9% from 99.95%.
func percent(n, total int64) string {
	if total == 0 {
		return "n/a"
	}
	p := 100 * float64(n) / float64(total)
	d := 2
	// One failure in a million is not 100.00%, and one success is not 0.00%.
	for ; d < 6; d++ {
		s := strconv.FormatFloat(p, 'f', d, 64)
		if (n == total || s != strconv.FormatFloat(100, 'f', d, 64)) && (n == 0 || s != strconv.FormatFloat(0, 'f', d, 64)) {
			break
		}
	}
	return strconv.FormatFloat(p, 'f', d, 64) + "%"
}

// overlapping summarises the recorder's buckets that overlap [from, to):
// those of a run's span, the partial first bucket included (a run seldom
// starts on a bucket boundary). Zero bounds are open.
func overlapping(rec *outcome.Recorder, from, to time.Time) outcome.Summary {
	if !from.IsZero() {
		w := int64(rec.Options().BucketWidth)
		ns := from.UnixNano()
		r := ns % w
		if r < 0 {
			r += w
		}
		from = time.Unix(0, ns-r)
	}
	return rec.Window(from, to)
}
