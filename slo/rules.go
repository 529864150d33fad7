package slo

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/semconv"
)

// RuleFile is a Prometheus rule file (rule_files:), as Marshal writes it.
// The fields of RuleFile, RuleGroup and Rule are Prometheus's, under the
// names its rule file format gives them.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is a group of rules Prometheus evaluates in order.
type RuleGroup struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording rule (Record) or an alerting rule (Alert).
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// Names of the generated series. The ratio, budget and burn-rate names
// are Sloth's, so that dashboards and alerts written for Sloth work on
// relia's rules; the event rates are relia's own.
const (
	// errorsMetric and eventsMetric are the per-second rates of failed
	// and all events over a window, the numerator and denominator every
	// ratio is computed from.
	errorsMetric = "slo:sli_errors:rate"
	eventsMetric = "slo:sli_events:rate"
	// ratioMetric is the error ratio over a window (Sloth's name).
	ratioMetric = "slo:sli_error:ratio_rate"

	objectiveMetric       = "slo:objective:ratio"
	errorBudgetMetric     = "slo:error_budget:ratio"
	periodDaysMetric      = "slo:time_period:days"
	currentBurnMetric     = "slo:current_burn_rate:ratio"
	periodBurnMetric      = "slo:period_burn_rate:ratio"
	budgetRemainingMetric = "slo:period_error_budget_remaining:ratio"
	infoMetric            = "sloth_slo_info"
)

// baseWindow is the window of the only rates read from the source
// metrics; every longer window is an average of these.
const baseWindow = 5 * time.Minute

// windows returns the windows the SLO needs series for, ascending: the
// base window, every alert window and the period.
func (s *SLO) windows() []time.Duration {
	ws := []time.Duration{s.baseWindow(), s.Period()}
	for _, a := range s.Alerts() {
		for _, w := range a.Windows {
			ws = append(ws, w.Long, w.Short)
		}
	}
	slices.Sort(ws)
	return slices.Compact(ws)
}

// baseWindow is 5m, or the shortest alert window when one is shorter.
func (s *SLO) baseWindow() time.Duration {
	base := baseWindow
	for _, a := range s.Alerts() {
		for _, w := range a.Windows {
			base = min(base, w.Short)
		}
	}
	return base
}

// seriesLabels are the labels of every series generated for the SLO.
func (s *SLO) seriesLabels() map[string]string {
	l := map[string]string{"sloth_id": s.ID(), "sloth_service": s.Spec.Service, "sloth_slo": s.Metadata.Name}
	maps.Copy(l, s.Metadata.Labels)
	return l
}

// selector picks the SLO's generated series.
func (s *SLO) selector() string { return fmt.Sprintf(`{sloth_id="%s"}`, s.ID()) }

var placeholderRE = regexp.MustCompile(`\{\{\s*\.window\s*\}\}`)

// sourceQueries returns PromQL for the per-second rates of failed and of
// all events over window, from the SLI's source metrics, each one series.
//
// Missing data never becomes a good SLI. Failed events are recorded only
// while the total is (failures without events are no SLI); a failed or
// good query that finds no series counts zero events only when it reads
// the total's own series narrowed by more matchers (see refines), since
// the total's series then show the metric is there and none matched;
// otherwise the SLI is missing until its series appear.
func (s *SLO) sourceQueries(window time.Duration) (errs, events string, err error) {
	if err := s.promReady(); err != nil {
		return "", "", err
	}
	w := config.FormatDuration(window)
	fill := func(q string) string { return strings.TrimSpace(placeholderRE.ReplaceAllString(q, w)) }
	// zeroWhenAbsent writes part, or zero while the total has series when
	// part finds none and refines the total.
	zeroWhenAbsent := func(part, raw, rawTotal string) string {
		if refines(raw, rawTotal) {
			return fmt.Sprintf("(%s or (%s * 0))", part, events)
		}
		return part
	}
	sli := s.Spec.SLI
	switch {
	case sli.Availability != nil:
		a := sli.Availability
		events = summed(fill(a.TotalQuery))
		if a.GoodQuery != "" {
			good := zeroWhenAbsent(summed(fill(a.GoodQuery)), a.GoodQuery, a.TotalQuery)
			return fmt.Sprintf("clamp_min(\n  %s\n  -\n  %s,\n  0\n)", events, good), events, nil
		}
		errs = fmt.Sprintf("%s\nand on ()\n%s", summed(fill(a.ErrorQuery)), events)
		if refines(a.ErrorQuery, a.TotalQuery) {
			errs = fmt.Sprintf("(\n  %s\n)\nor\n(%s * 0)", strings.ReplaceAll(errs, "\n", "\n  "), events)
		}
		return errs, events, nil
	default:
		l := sli.Latency
		sel := strings.TrimSpace(strings.Trim(strings.TrimSpace(l.Selector), "{}"))
		with := func(extra string) string {
			if sel == "" {
				return "{" + extra + "}"
			}
			if extra == "" {
				return "{" + sel + "}"
			}
			return "{" + sel + "," + extra + "}"
		}
		t := l.Threshold.Seconds()
		if l.Histogram == Native {
			h := fmt.Sprintf("sum(rate(%s%s[%s]))", l.Metric, with(""), w)
			events = fmt.Sprintf("histogram_count(%s)", h)
			errs = fmt.Sprintf("%s\n* (1 - histogram_fraction(0, %s, %s))", events, formatFloat(t), h)
			return errs, events, nil
		}
		// No zero for a missing bucket: the threshold would not be one
		// of the histogram's bounds.
		events = fmt.Sprintf("sum(rate(%s_count%s[%s]))", l.Metric, with(""), w)
		good := fmt.Sprintf("sum(rate(%s_bucket%s[%s]))", l.Metric, with(leMatcher(t)), w)
		return fmt.Sprintf("clamp_min(\n  %s\n  -\n  %s,\n  0\n)", events, good), events, nil
	}
}

// promReady reports what keeps the SLO from having Prometheus rules, or
// right ones: an SLI without queries (evaluated in relia runs only), a
// latency SLI without the histogram's name, or one whose threshold is
// not a bucket bound of a histogram relia exports (see CheckThreshold;
// bounds the spec declares are checked by Validate).
func (s *SLO) promReady() error {
	sli := s.Spec.SLI
	switch {
	case sli.Availability != nil && sli.Availability.TotalQuery == "":
		return s.errorf("spec.sli.availability", "has no errorQuery (or goodQuery) and totalQuery, so no Prometheus rules: it is judged in relia runs only")
	case sli.Latency != nil && sli.Latency.Metric == "":
		return s.errorf("spec.sli.latency.metric", "missing: Prometheus rules need the histogram's name (%s for relia's gateway); without it the SLO is judged in relia runs only", semconv.HTTPServerRequestDuration)
	case sli.Availability == nil && sli.Latency == nil:
		return s.errorf("spec.sli", "needs an SLI kind")
	}
	if l := sli.Latency; l != nil && l.Histogram != Native && len(l.Buckets) == 0 {
		if buckets, ok := semconv.Buckets(l.Metric); ok {
			if err := CheckThreshold(l.Threshold, buckets); err != nil {
				return s.errorf("spec.sli.latency.threshold", "%v, as relia exports %s by default; where yours has other buckets (a gateway's spec.metrics.latencyBuckets), list them in spec.sli.latency.buckets",
					err, l.Metric)
			}
		}
	}
	return nil
}

// leMatcher matches a classic histogram's bucket bound. Prometheus 3
// writes whole bounds as "1.0" where Prometheus 2 and most clients wrote
// "1", so whole bounds match either.
func leMatcher(seconds float64) string {
	le := formatFloat(seconds)
	if seconds == math.Trunc(seconds) {
		return fmt.Sprintf(`le=~"%s(\\.0)?"`, le)
	}
	return fmt.Sprintf(`le="%s"`, le)
}

// threshold writes the error ratio at which a pair fires, as Sloth does:
// (burn rate * error budget).
func threshold(burnRate, budget float64) string {
	return fmt.Sprintf("(%s * %s)", formatFloat(burnRate), formatFloat(budget))
}

// Rules generates the Prometheus recording and alerting rules for slos:
// three groups per SLO.
//
// The SLI group records the per-second rates of failed and of all events
// over the base window (5m) from the SLI's queries, then the rates over
// every longer window as averages of those 5m rates, and the error ratio
// over each window as the ratio of the two rates. A long window's ratio is
// thus a ratio of summed events, never an average of ratios (which
// would weigh a quiet night's 5 minutes like a busy evening's), and the
// 30-day window reads two recorded series rather than every raw series
// of the service. An average over the window covers events from up to
// one base window before it: 5 minutes of a day.
//
// The meta group records the objective, the error budget, the period, the
// current (5m) and period burn rates and the budget remaining, under
// Sloth's names. The alert group holds the page and ticket alerts: each
// fires when any of its window pairs has both windows' error ratio above
// its burn rate times the budget (and, with MinEvents, enough events in
// the long window).
func Rules(slos []*SLO) (RuleFile, error) {
	var f RuleFile
	for _, s := range slos {
		groups, err := s.rules()
		if err != nil {
			return RuleFile{}, err
		}
		f.Groups = append(f.Groups, groups...)
	}
	return f, nil
}

// Generate checks slos for Prometheus and returns what relia slo
// generate writes: their rules, and the promtool tests of each, reading
// the rules from ruleFile (see RuleTests). Every check either runs is
// made, and every problem reported; relia slo validate calls it too, so
// that a spec it passes is one generate accepts.
func Generate(slos []*SLO, ruleFile string) (RuleFile, []RuleTestFile, error) {
	var f RuleFile
	var tests []RuleTestFile
	var errs []error
	for _, s := range slos {
		groups, err := s.rules()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Groups = append(f.Groups, groups...)
		t, err := s.RuleTests(ruleFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tests = append(tests, t...)
	}
	if len(errs) > 0 {
		return RuleFile{}, nil, errors.Join(errs...)
	}
	return f, tests, nil
}

func (s *SLO) rules() ([]RuleGroup, error) {
	id, sel := s.ID(), s.selector()
	base := s.baseWindow()
	errQ, eventsQ, err := s.sourceQueries(base)
	if err != nil {
		return nil, err
	}
	labels := s.seriesLabels()
	withWindow := func(w time.Duration) map[string]string {
		l := maps.Clone(labels)
		l["sloth_window"] = config.FormatDuration(w)
		return l
	}
	name := func(metric string, w time.Duration) string { return metric + config.FormatDuration(w) }

	sli := RuleGroup{Name: "relia-slo-sli-recordings-" + id}
	sli.Rules = append(sli.Rules,
		Rule{Record: name(errorsMetric, base), Expr: errQ, Labels: withWindow(base)},
		Rule{Record: name(eventsMetric, base), Expr: eventsQ, Labels: withWindow(base)},
	)
	windows := s.windows()
	for _, w := range windows[1:] {
		for _, m := range []string{errorsMetric, eventsMetric} {
			sli.Rules = append(sli.Rules, Rule{
				Record: name(m, w),
				Expr:   fmt.Sprintf("avg_over_time(%s%s[%s])", name(m, base), sel, config.FormatDuration(w)),
				Labels: withWindow(w),
			})
		}
	}
	for _, w := range windows {
		sli.Rules = append(sli.Rules, Rule{
			Record: name(ratioMetric, w),
			Expr:   fmt.Sprintf("%s%s\n/\n(%s%s > 0)", name(errorsMetric, w), sel, name(eventsMetric, w), sel),
			Labels: withWindow(w),
		})
	}

	budget := s.ErrorBudget()
	period := s.Period()
	info := maps.Clone(labels)
	info["sloth_objective"] = formatFloat(float64(s.Spec.Objective) * 100)
	info["sloth_spec"] = s.format()
	meta := RuleGroup{Name: "relia-slo-meta-recordings-" + id, Rules: []Rule{
		{Record: objectiveMetric, Expr: fmt.Sprintf("vector(%s)", formatFloat(float64(s.Spec.Objective))), Labels: labels},
		{Record: errorBudgetMetric, Expr: fmt.Sprintf("vector(%s)", formatFloat(budget)), Labels: labels},
		{Record: periodDaysMetric, Expr: fmt.Sprintf("vector(%s)", formatFloat(float64(period)/float64(config.Day))), Labels: labels},
		{Record: currentBurnMetric, Expr: fmt.Sprintf("%s%s / %s", name(ratioMetric, base), sel, formatFloat(budget)), Labels: labels},
		{Record: periodBurnMetric, Expr: fmt.Sprintf("%s%s / %s", name(ratioMetric, period), sel, formatFloat(budget)), Labels: labels},
		{Record: budgetRemainingMetric, Expr: fmt.Sprintf("1 - %s%s", periodBurnMetric, sel), Labels: labels},
		{Record: infoMetric, Expr: "vector(1)", Labels: info},
	}}

	alerts := RuleGroup{Name: "relia-slo-alerts-" + id}
	for _, a := range s.Alerts() {
		var pairs []string
		for _, w := range a.Windows {
			thr := threshold(w.BurnRate, budget)
			conds := []string{
				fmt.Sprintf("max(%s%s > %s) without (sloth_window)", name(ratioMetric, w.Long), sel, thr),
				fmt.Sprintf("max(%s%s > %s) without (sloth_window)", name(ratioMetric, w.Short), sel, thr),
			}
			if a.MinEvents > 0 {
				conds = append(conds, fmt.Sprintf("max(%s%s * %s >= %d) without (sloth_window)",
					name(eventsMetric, w.Long), sel, formatFloat(w.Long.Seconds()), a.MinEvents))
			}
			pairs = append(pairs, "(\n  "+strings.Join(conds, "\n  and\n  ")+"\n)")
		}
		// The SLO's ids on the rule itself (its series carry them too)
		// keep two SLOs' alerts of one name and labels apart, which
		// promtool's lint requires.
		rl := maps.Clone(a.Labels)
		for _, k := range []string{"sloth_id", "sloth_service", "sloth_slo"} {
			rl[k] = labels[k]
		}
		r := Rule{Alert: a.Name, Expr: strings.Join(pairs, "\nor\n"), Labels: rl, Annotations: a.Annotations}
		if a.For > 0 {
			r.For = config.FormatDuration(a.For)
		}
		alerts.Rules = append(alerts.Rules, r)
	}
	groups := []RuleGroup{sli, meta}
	if len(alerts.Rules) > 0 {
		groups = append(groups, alerts)
	}
	return groups, nil
}

// format names the spec format the SLO was read from.
func (s *SLO) format() string {
	if s.src.doc.Version != "" {
		return s.src.doc.Version
	}
	return FormatRelia
}

// Marshal writes the rule file as YAML under a header saying where it
// came from.
func (f RuleFile) Marshal(header string) ([]byte, error) { return marshalYAML(header, f) }

// marshalYAML writes v as YAML, two-space indented, under header as
// comment lines.
func marshalYAML(header string, v any) ([]byte, error) {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(header), "\n") {
		if line != "" {
			b.WriteString("# " + line + "\n")
		}
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("writing YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing YAML: %w", err)
	}
	return b.Bytes(), nil
}
