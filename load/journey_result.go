package load

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// JourneyRecorders hold what a journey test measured of its journeys and
// groups, one outcome per journey walked (or group run): its start (the
// scheduled arrival in the open model), its length, and ClassOK or the
// class of its first failed request. They merge exactly across segments
// like the request recorders.
type JourneyRecorders struct {
	// All holds every journey; ByJourney the same per journey name.
	All       *outcome.Recorder            `json:"all"`
	ByJourney map[string]*outcome.Recorder `json:"by_journey"`
	// Groups holds every group run; ByGroup the same per group path
	// ("::cart").
	Groups  *outcome.Recorder            `json:"groups"`
	ByGroup map[string]*outcome.Recorder `json:"by_group"`
	// CookiesDropped counts the cookies responses set that a user's jar
	// did not keep: past the scenario's cookieJar bounds.
	CookiesDropped int64 `json:"cookies_dropped,omitempty"`
}

// The journey metrics thresholds may name (see Metrics).
const (
	MetricJourneys        = "journeys"
	MetricJourneyDuration = "journey_duration"
	MetricJourneySuccess  = "journey_success"
	MetricGroupDuration   = "group_duration"
)

// isJourneyMetric reports whether a metric is measured per journey or
// group rather than per request.
func isJourneyMetric(m string) bool {
	switch m {
	case MetricJourneys, MetricJourneyDuration, MetricJourneySuccess, MetricGroupDuration:
		return true
	}
	return false
}

func newJourneyRecorders(t *Test) *JourneyRecorders {
	j := &JourneyRecorders{All: newRecorder(), ByJourney: map[string]*outcome.Recorder{},
		Groups: newRecorder(), ByGroup: map[string]*outcome.Recorder{}}
	for _, jr := range t.journeys {
		j.ByJourney[jr.Name] = newRecorder()
	}
	for _, g := range t.groups {
		j.ByGroup[g] = newRecorder()
	}
	return j
}

func (j *JourneyRecorders) record(name string, o outcome.Outcome) {
	j.All.Record(o)
	j.ByJourney[name].Record(o)
}

func (j *JourneyRecorders) recordGroup(path string, o outcome.Outcome) {
	j.Groups.Record(o)
	j.ByGroup[path].Record(o)
}

func (j *JourneyRecorders) merge(o *JourneyRecorders) error {
	j.CookiesDropped += o.CookiesDropped
	if err := j.All.Merge(o.All); err != nil {
		return err
	}
	if err := j.Groups.Merge(o.Groups); err != nil {
		return err
	}
	for _, m := range [][2]map[string]*outcome.Recorder{{j.ByJourney, o.ByJourney}, {j.ByGroup, o.ByGroup}} {
		for k, rec := range m[1] {
			if m[0][k] == nil {
				m[0][k] = newRecorder()
			}
			if err := m[0][k].Merge(rec); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
	}
	return nil
}

// valid checks a decoded results file's journeys.
func (j *JourneyRecorders) valid() error {
	if j.All == nil || j.Groups == nil {
		return errors.New("journeys: all and groups are required")
	}
	if j.CookiesDropped < 0 {
		return fmt.Errorf("journeys: cookies_dropped %d is negative", j.CookiesDropped)
	}
	if j.ByJourney == nil {
		j.ByJourney = map[string]*outcome.Recorder{}
	}
	if j.ByGroup == nil {
		j.ByGroup = map[string]*outcome.Recorder{}
	}
	for _, m := range []map[string]*outcome.Recorder{j.ByJourney, j.ByGroup} {
		for k, v := range m {
			if v == nil {
				return fmt.Errorf("journeys: %q is null", k)
			}
		}
	}
	return nil
}

// checkJourneyTags checks the tags of a threshold on a journey metric:
// journey:NAME on the journey metrics, group:PATH on group_duration.
func (t *Test) checkJourneyTags(th Threshold) error {
	if len(t.journeys) == 0 {
		return fmt.Errorf("%s is a metric of journeys; this scenario has none", th.Metric)
	}
	for _, k := range slices.Sorted(maps.Keys(th.Tags)) {
		v := th.Tags[k]
		switch {
		case k == "scenario":
			if v != t.Name {
				return fmt.Errorf("tag scenario:%s: this scenario is named %q", v, t.Name)
			}
		case k == "journey" && th.Metric != MetricGroupDuration:
			if !slices.ContainsFunc(t.journeys, func(j *Journey) bool { return j.Name == v }) {
				return fmt.Errorf("no journey is named %q (journeys: %s)", v, journeyNames(t.journeys))
			}
		case k == "group" && th.Metric == MetricGroupDuration:
			if !slices.Contains(t.groups, v) {
				return fmt.Errorf("no group %q (groups: %s)", v, fmt.Sprint(t.groups))
			}
		case th.Metric == MetricGroupDuration:
			return fmt.Errorf("tag %s: %s splits by group only", k, th.Metric)
		default:
			return fmt.Errorf("tag %s: %s splits by journey only", k, th.Metric)
		}
	}
	return nil
}

func journeyNames(js []*Journey) string {
	var s string
	for i, j := range js {
		if i > 0 {
			s += ", "
		}
		s += j.Name
	}
	return s
}

// journeyRecorder returns the recorder a journey metric's threshold
// reads.
func (r *Result) journeyRecorder(th Threshold) *outcome.Recorder {
	j := r.Journeys
	if j == nil {
		return nil
	}
	if th.Metric == MetricGroupDuration {
		if g, ok := th.Tags["group"]; ok {
			return j.ByGroup[g]
		}
		return j.Groups
	}
	if name, ok := th.Tags["journey"]; ok {
		return j.ByJourney[name]
	}
	return j.All
}

// journeyValue computes a journey metric over the buckets in [from, to),
// as JourneyValue does.
func (r *Result) journeyValue(th Threshold, from, to time.Time, length time.Duration) (float64, bool) {
	rec := r.journeyRecorder(th)
	if rec == nil {
		return 0, false
	}
	v, _, ok := JourneyValue(th, rec.Window(from, to), length)
	return v, ok
}

// JourneyValue computes a journey metric's aggregate over a summary of
// journeys (or groups) lasting span: journeys counts them (or per
// second), journey_duration and group_duration aggregate their lengths
// in milliseconds, journey_success is the share that ended as ClassOK.
// The threshold, the terminal, the results file and the HTML report all
// compute through it.
func JourneyValue(th Threshold, sum outcome.Summary, span time.Duration) (v float64, events int64, ok bool) {
	switch th.Metric {
	case MetricJourneys:
		return counterValue(th, sum.Total, sum.Total, span)
	case MetricJourneyDuration, MetricGroupDuration:
		if sum.Latency.Count() == 0 {
			return 0, 0, false
		}
		return trendValue(th, sum.Latency), sum.Latency.Count(), true
	case MetricJourneySuccess:
		if sum.Total == 0 {
			return 0, 0, false
		}
		return float64(sum.ByClass[outcome.ClassOK]) / float64(sum.Total), sum.Total, true
	}
	return 0, 0, false
}

// JourneyRow is one journey's (or group's) line in a summary.
type JourneyRow struct {
	// Name is the journey's name or the group's path.
	Name string
	// Count journeys completed, Rate per second of the run, Succeeded
	// those that ended without a failed request or check.
	Count, Succeeded int64
	Rate             float64
	// P50, P95, P99 and Max are of their lengths.
	P50, P95, P99, Max time.Duration
}

// SuccessRate is the share of journeys that succeeded.
func (j JourneyRow) SuccessRate() float64 {
	if j.Count == 0 {
		return 0
	}
	return float64(j.Succeeded) / float64(j.Count)
}

func journeyRow(name string, sum outcome.Summary, secs float64) JourneyRow {
	row := JourneyRow{Name: name, Count: sum.Total, Succeeded: sum.ByClass[outcome.ClassOK],
		P50: sum.Latency.Quantile(0.5), P95: sum.Latency.Quantile(0.95), P99: sum.Latency.Quantile(0.99), Max: sum.Latency.Max()}
	if secs > 0 {
		row.Rate = float64(sum.Total) / secs
	}
	return row
}

// JourneyRows returns a row per journey, in name order, then one for all
// of them; nil for a test of requests.
func (r *Result) JourneyRows() []JourneyRow {
	if r.Journeys == nil {
		return nil
	}
	secs := r.End.Sub(r.Start).Seconds()
	var out []JourneyRow
	for _, name := range slices.Sorted(maps.Keys(r.Journeys.ByJourney)) {
		out = append(out, journeyRow(name, r.Journeys.ByJourney[name].Total(), secs))
	}
	return append(out, journeyRow("all", r.Journeys.All.Total(), secs))
}

// GroupRows returns a row per group, in path order.
func (r *Result) GroupRows() []JourneyRow {
	if r.Journeys == nil {
		return nil
	}
	secs := r.End.Sub(r.Start).Seconds()
	var out []JourneyRow
	for _, g := range slices.Sorted(maps.Keys(r.Journeys.ByGroup)) {
		out = append(out, journeyRow(g, r.Journeys.ByGroup[g].Total(), secs))
	}
	return out
}

// journeySummaries adds the journey metrics to a k6-shaped summary: the
// run's journeys, journey_duration and journey_success, the same per
// journey ({journey:NAME}), and group_duration overall and per group
// ({group:::NAME}).
func (r *Result) journeySummaries(out map[string]MetricSummary, from, to time.Time, length time.Duration) {
	j := r.Journeys
	if j == nil {
		return
	}
	add := func(suffix string, tags map[string]string, sum outcome.Summary) {
		out[MetricJourneys+suffix] = r.counterSummary(Threshold{Metric: MetricJourneys, Tags: tags}, "default", from, to, length)
		if sum.Latency.Count() > 0 {
			out[MetricJourneyDuration+suffix] = trendSummary(MetricJourneyDuration, sum.Latency)
		}
		if v, _, ok := JourneyValue(Threshold{Metric: MetricJourneySuccess}, sum, length); ok {
			ok := sum.ByClass[outcome.ClassOK]
			out[MetricJourneySuccess+suffix] = rateSummary(v, ok, sum.Total-ok)
		}
	}
	add("", nil, j.All.Window(from, to))
	for name, rec := range j.ByJourney {
		add("{journey:"+name+"}", map[string]string{"journey": name}, rec.Window(from, to))
	}
	if h := j.Groups.Window(from, to).Latency; h.Count() > 0 {
		out[MetricGroupDuration] = trendSummary(MetricGroupDuration, h)
	}
	for g, rec := range j.ByGroup {
		if h := rec.Window(from, to).Latency; h.Count() > 0 {
			out[MetricGroupDuration+"{group:"+g+"}"] = trendSummary(MetricGroupDuration, h)
		}
	}
}

// writeJourneys writes the summary's journey and group table: count,
// rate, success and length percentiles, each as the thresholds compute
// them.
func (r *Result) writeJourneys(b *strings.Builder) error {
	rows := r.JourneyRows()
	if rows == nil {
		return nil
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', tabwriter.AlignRight)
	what := "journeys"
	if r.Model == Open {
		what = "journeys from schedule"
	}
	fmt.Fprintf(tw, "%s\tcount\tper s\tsuccess\tp50\tp95\tp99\tmax\t\n", what)
	line := func(name string, row JourneyRow) {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", name, row.Count, row.Rate, pct(row.SuccessRate()),
			ms(row.P50), ms(row.P95), ms(row.P99), ms(row.Max))
	}
	for _, row := range rows {
		line("  "+row.Name, row)
	}
	for _, row := range r.GroupRows() {
		line("  group "+row.Name, row)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if n := r.Journeys.CookiesDropped; n > 0 {
		fmt.Fprintf(b, "  %d cookies dropped: past the users' cookie jar bounds (spec.cookieJar)\n", n)
	}
	return nil
}
