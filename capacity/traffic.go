package capacity

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// RatePoint is the arrival rate, in requests per second, at an offset
// from the start of a traffic curve.
type RatePoint struct {
	At   time.Duration `json:"at_ns"`
	Rate float64       `json:"rate"`
}

// Traffic is a traffic curve: the arrival rate moves linearly between its
// points, which are in time order, and holds the last point's rate to the
// curve's end.
type Traffic []RatePoint

// Validate checks that the points are in order, finite and non-negative.
func (tr Traffic) Validate() error {
	if len(tr) == 0 {
		return errors.New("the traffic curve has no points")
	}
	for i, p := range tr {
		if p.At < 0 || math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) || p.Rate < 0 {
			return fmt.Errorf("point %d (%s, %v req/s): want a time >= 0 and a finite rate >= 0", i+1, p.At, p.Rate)
		}
		if i > 0 && p.At < tr[i-1].At {
			return fmt.Errorf("point %d at %s comes before the one at %s: points must be in time order", i+1, p.At, tr[i-1].At)
		}
	}
	return nil
}

// End is the offset of the last point.
func (tr Traffic) End() time.Duration {
	if len(tr) == 0 {
		return 0
	}
	return tr[len(tr)-1].At
}

// RateAt is the arrival rate at offset t.
func (tr Traffic) RateAt(t time.Duration) float64 {
	i, _ := slices.BinarySearchFunc(tr, t, func(p RatePoint, t time.Duration) int { return cmpFloat(float64(p.At), float64(t)) })
	switch {
	case len(tr) == 0:
		return 0
	case i >= len(tr):
		return tr[len(tr)-1].Rate
	case tr[i].At == t || i == 0:
		// on a point (the last of several at the same time wins)
		for i+1 < len(tr) && tr[i+1].At == t {
			i++
		}
		return tr[i].Rate
	}
	a, b := tr[i-1], tr[i]
	return a.Rate + (b.Rate-a.Rate)*float64(t-a.At)/float64(b.At-a.At)
}

// Peak is the highest rate of the curve and when it is first reached.
func (tr Traffic) Peak() (at time.Duration, rate float64) {
	for _, p := range tr {
		if p.Rate > rate {
			at, rate = p.At, p.Rate
		}
	}
	return at, rate
}

// Spike describes the curve's steepest rise to its peak: from the
// lowest rate before a rise to the peak's level (90% of the peak or
// more) to the peak, how many times larger the peak is, and how long the
// rise took (from the last time the rate was at most 10% above the base
// to the first time it reached 90% of the peak).
//
// The rise is the first that starts from the curve's deepest trough
// before the peak's level (within 10%), not only one that ends at the
// highest point: a forecast of a daily cycle whose highest hour falls in
// its first hours still swings from its night to its day every day, and
// a curve that opens at its peak may still fall and rise again.
type Spike struct {
	Start  time.Duration `json:"start_ns"`
	Base   float64       `json:"base_rps"`
	Peak   float64       `json:"peak_rps"`
	Factor float64       `json:"factor"`
	Rise   time.Duration `json:"rise_ns"`
}

// Spike finds the curve's spike, sampling it every second (so a step
// change rises in one second).
func (tr Traffic) Spike() Spike {
	if len(tr) == 0 {
		return Spike{}
	}
	_, peak := tr.Peak()
	end := tr[len(tr)-1].At
	nearPeak := func(rate float64) bool { return rate >= 0.9*peak }
	// The lowest rate before the last second at the peak's level: the
	// deepest trough any rise to the peak starts from.
	lowest, sofar := peak, math.Inf(1)
	for t := time.Duration(0); t <= end; t += time.Second {
		r := tr.RateAt(t)
		sofar = min(sofar, r)
		if nearPeak(r) {
			lowest = sofar
		}
	}
	// The first second at the peak's level after a trough that deep.
	at, base := time.Duration(0), peak
	sofar = math.Inf(1)
	for t := time.Duration(0); t <= end; t += time.Second {
		r := tr.RateAt(t)
		sofar = min(sofar, r)
		if nearPeak(r) && sofar <= 1.1*lowest {
			at, base = t, sofar
			break
		}
	}
	s := Spike{Base: base, Peak: peak}
	if base > 0 {
		s.Factor = peak / base
	}
	var from time.Duration
	for t := time.Duration(0); t <= at; t += time.Second {
		if tr.RateAt(t) <= base*1.1 {
			from = t
		}
	}
	to := at
	for t := from; t <= at; t += time.Second {
		if nearPeak(tr.RateAt(t)) {
			to = t
			break
		}
	}
	s.Start, s.Rise = from, to-from
	return s
}

// String describes the spike in words: "a 10x spike in 30s".
func (s Spike) String() string {
	if s.Factor == 0 {
		return fmt.Sprintf("a rise to %s req/s", fmtNum(s.Peak))
	}
	return fmt.Sprintf("a %sx spike in %s", fmtNum(s.Factor), fmtDur(s.Rise))
}

// ParseTraffic reads a traffic curve: one point a line, the time and the
// rate separated by a comma, a tab or spaces. The time is a Go duration
// ("90s", "1m30s") or a number of seconds; the rate is in requests per
// second. Blank lines and lines starting with # are skipped, and so is a
// first line whose rate is not a number (a CSV header such as "t,rate").
// name is used in errors.
func ParseTraffic(name string, r io.Reader) (Traffic, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	var tr Traffic
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\t' || r == ' ' })
		if len(fields) != 2 {
			return nil, fmt.Errorf("%s:%d: want two fields, the time and the rate, got %q", name, line, text)
		}
		rate, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			if len(tr) == 0 && !looksNumeric(fields[0]) {
				continue // a header
			}
			return nil, fmt.Errorf("%s:%d: rate %q is not a number", name, line, fields[1])
		}
		at, err := parseOffset(fields[0])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: time %q: %w", name, line, fields[0], err)
		}
		tr = append(tr, RatePoint{At: at, Rate: rate})
		if err := tr.Validate(); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if len(tr) == 0 {
		return nil, fmt.Errorf("%s: no points", name)
	}
	return tr, nil
}

// looksNumeric reports whether s starts like a time or a number.
func looksNumeric(s string) bool {
	return s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '.' || s[0] == '-' || s[0] == '+')
}

// parseOffset reads a duration or a number of seconds.
func parseOffset(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > float64(math.MaxInt64/int64(time.Second)) {
		return 0, errors.New("want a duration (90s) or a number of seconds >= 0")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// Format writes the curve as ParseTraffic reads it.
func (tr Traffic) Format() []byte {
	var b bytes.Buffer
	b.WriteString("t,rate\n")
	for _, p := range tr {
		fmt.Fprintf(&b, "%s,%s\n", p.At, strconv.FormatFloat(p.Rate, 'g', -1, 64))
	}
	return b.Bytes()
}

// Scale returns the curve with every rate multiplied by k.
func (tr Traffic) Scale(k float64) Traffic {
	out := slices.Clone(tr)
	for i := range out {
		out[i].Rate *= k
	}
	return out
}

// fmtNum writes a number with at most one decimal, none when whole;
// below 1, three significant digits, so that a rate of 0.0583 req/s (a
// quiet route's forecast) is not written as 0.1 or 0.0.
func fmtNum(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	if math.Abs(v) < 1 {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// FormatRate writes a rate (req/s) as the plan's arithmetic writes it.
func FormatRate(v float64) string { return fmtNum(v) }

// fmtDur writes a duration rounded to what a reader needs: whole seconds
// from a minute up, tenths of a second below.
func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Minute:
		return config.FormatDuration(d.Round(time.Second))
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Millisecond).String()
}

// TrafficFromCounts is the curve of requests counted in consecutive
// buckets of length step (a call store's per-minute or hourly rollups, a
// forecast's hours): each bucket's rate, its count over step, held over
// the bucket, so that the curve carries exactly the counted requests and
// its rate in each bucket is the bucket's. Negative counts are taken as
// none.
func TrafficFromCounts(step time.Duration, counts []float64) Traffic {
	tr := make(Traffic, 0, 2*len(counts))
	for i, c := range counts {
		r := max(c, 0) / step.Seconds()
		tr = append(tr, RatePoint{At: time.Duration(i) * step, Rate: r}, RatePoint{At: time.Duration(i+1) * step, Rate: r})
	}
	return tr
}
