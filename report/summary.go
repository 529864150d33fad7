package report

import (
	"strconv"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// RecorderStats summarises the recorder's buckets that start in [from,
// to) (zero bounds are open, as in Recorder.Window) as headline figures:
// requests, mean throughput over the buckets' span, availability by the
// recorder's default rule (good/total, Summary.Good with a nil
// predicate), and p50, p95, p99 and max latency. The figures carry no
// pass/fail status: that is the verdict's to give.
func RecorderStats(rec *outcome.Recorder, from, to time.Time) []Stat {
	w := rec.Window(from, to)
	if w.Total == 0 {
		return []Stat{{Label: "Requests", Value: "0"}}
	}
	good, total := w.Good(nil)
	span := w.To.Sub(w.From)
	stats := []Stat{
		{Label: "Requests", Value: strconv.FormatInt(total, 10), Note: "over " + span.Round(time.Millisecond).String()},
		{Label: "Throughput", Value: formatValue(float64(total)/span.Seconds(), "req/s"), Note: "mean"},
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

// RecorderTables breaks the recorder's buckets that start in [from, to)
// down by outcome class and by HTTP status class, with counts and shares;
// failed classes are marked as failing rows so they stand out.
func RecorderTables(rec *outcome.Recorder, from, to time.Time) []Table {
	w := rec.Window(from, to)
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
