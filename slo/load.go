package slo

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/outcome"
)

// Spec formats relia reads, by their version: (or apiVersion:) value.
const (
	FormatRelia   = config.Version // kind: SLO, version: relia/v1
	FormatOpenSLO = "openslo/v1"   // OpenSLO v1: SLO, SLI, AlertPolicy, AlertCondition
	FormatSloth   = "prometheus/v1"
)

// source is where an SLO was read from, so that validation errors point
// into the file the user wrote, whichever format it was.
type source struct {
	doc config.Document
	// path turns a relia field path into the path of the same setting in
	// doc; nil for relia documents, where they are the same.
	path func(string) string
}

// errorf reports a problem with the field at path (a relia path such as
// "spec.objective") at its place in the source file.
func (s *SLO) errorf(path, format string, args ...any) error {
	if s.src.doc.Node == nil {
		return fmt.Errorf("SLO %s: %s: %s", s.ID(), path, fmt.Sprintf(format, args...))
	}
	if s.src.path != nil {
		path = s.src.path(path)
	}
	return s.src.doc.Errorf(path, format, args...)
}

// ReadFiles reads and validates the SLOs in files: relia documents of
// kind SLO (documents of other kinds are skipped), OpenSLO v1 documents,
// Sloth prometheus/v1 specs and Sloth's Kubernetes PrometheusServiceLevel
// resources, told apart by their version. Every
// problem is reported, each as a *config.Error naming file:line:col.
func ReadFiles(paths ...string) ([]*SLO, error) {
	var all []*SLO
	var errs []error
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading SLOs: %w", err))
			continue
		}
		slos, err := Parse(p, data)
		if err != nil {
			errs = append(errs, err)
		}
		all = append(all, slos...)
	}
	if err := checkUnique(all); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return all, nil
}

// Parse reads and validates the SLOs in data, as ReadFiles does; name is
// used in errors.
func Parse(name string, data []byte) ([]*SLO, error) {
	docs, err := config.ParseAny(name, data)
	if err != nil {
		return nil, err
	}
	var slos []*SLO
	var errs []error
	var openslo []config.Document
	for _, d := range docs {
		switch d.Version {
		case FormatRelia:
			if d.Kind == "" {
				errs = append(errs, d.Errorf("kind", "missing: every document needs a kind:"))
				continue
			}
			if d.Kind != Kind {
				continue // another kind of relia config
			}
			s := &SLO{src: source{doc: d}}
			if err := d.Decode(s); err != nil {
				errs = append(errs, err)
				continue
			}
			slos = append(slos, s)
		case FormatOpenSLO:
			openslo = append(openslo, d)
		case FormatSloth, FormatSlothK8s:
			imp := importSloth
			if d.Version == FormatSlothK8s {
				imp = importSlothK8s
			}
			got, err := imp(d)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			slos = append(slos, got...)
		case "":
			errs = append(errs, d.Errorf("version", "missing: want version: %s (or apiVersion: %s or %s, or Sloth's version: %s)", FormatRelia, FormatOpenSLO, FormatSlothK8s, FormatSloth))
		default:
			field := "version"
			if d.At("version") == d.Node {
				field = "apiVersion"
			}
			hint := ""
			if strings.HasPrefix(d.Version, "openslo/") {
				hint = "; relia reads OpenSLO's released v1, not its drafts: write apiVersion: openslo/v1 with spec.indicator.spec.ratioMetric"
			}
			errs = append(errs, d.Errorf(field, "%q is not a format relia reads (want %s, %s, %s or %s)%s", d.Version, FormatRelia, FormatOpenSLO, FormatSloth, FormatSlothK8s, hint))
		}
	}
	if len(openslo) > 0 {
		got, err := importOpenSLO(openslo)
		if err != nil {
			errs = append(errs, err)
		}
		slos = append(slos, got...)
	}
	for _, s := range slos {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 && len(slos) == 0 {
		errs = append(errs, fmt.Errorf("%s: no SLOs (documents of kind: SLO, OpenSLO SLOs or a Sloth spec)", name))
	}
	if err := checkUnique(slos); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return slos, nil
}

// checkUnique reports SLOs that share an id: their series would mix.
func checkUnique(slos []*SLO) error {
	seen := map[string]*SLO{}
	var errs []error
	for _, s := range slos {
		if first, dup := seen[s.ID()]; dup {
			where := ""
			if first.src.doc.Node != nil {
				where = fmt.Sprintf(" (first in %s:%d)", first.src.doc.File, first.src.doc.Node.Line)
			}
			errs = append(errs, s.errorf("metadata.name", "SLO id %s is used twice%s: ids name the generated series", s.ID(), where))
			continue
		}
		seen[s.ID()] = s
	}
	return errors.Join(errs...)
}

// ID is the SLO's identifier in generated series and alerts (the
// sloth_id label): "<service>-<name>".
func (s *SLO) ID() string { return s.Spec.Service + "-" + s.Metadata.Name }

// Period returns the SLO's period, DefaultPeriod when the spec names
// none.
func (s *SLO) Period() time.Duration {
	if s.Spec.Period == 0 {
		return DefaultPeriod
	}
	return s.Spec.Period
}

// ErrorBudget returns the SLO's error budget: the share of events that
// may fail, 1 - objective, rounded to 12 significant digits so that the
// budget of 99.9% is 0.001 and not 0.0010000000000000009.
func (s *SLO) ErrorBudget() float64 { return ErrorBudget(float64(s.Spec.Objective)) }

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	labelNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	alertNameRE = regexp.MustCompile(`^[A-Za-z_:][A-Za-z0-9_:]*$`)
)

// Validate checks what decoding cannot: an objective in (0, 1), exactly
// one SLI kind with its placeholders, a latency threshold on a bucket
// boundary, windows within the period, burn rates that can fire and
// valid names. Every problem is reported, each positioned in the source
// file when the SLO was read from one. ReadFiles and Parse call it.
func (s *SLO) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, s.errorf(path, format, args...)) }
	if !nameRE.MatchString(s.Metadata.Name) {
		bad("metadata.name", "%q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", s.Metadata.Name)
	}
	if !nameRE.MatchString(s.Spec.Service) {
		bad("spec.service", "%q must start with a letter or digit and hold only letters, digits, '-', '_' and '.'", s.Spec.Service)
	}
	checkLabels(bad, "metadata.labels", s.Metadata.Labels)
	obj := float64(s.Spec.Objective)
	switch {
	case obj >= 1:
		bad("spec.objective", "%v is not in (0, 1): an objective of 100%% leaves no error budget", s.Spec.Objective)
	case obj <= 0:
		bad("spec.objective", "%v is not in (0, 1): an objective of 0 promises nothing", s.Spec.Objective)
	}
	if s.Spec.Period < 0 {
		bad("spec.period", "%v is negative", s.Spec.Period)
	}
	s.validateSLI(bad)
	if obj > 0 && obj < 1 {
		s.validateAlerting(bad)
	}
	return errors.Join(errs...)
}

// reserved labels are the ones generated series carry themselves.
var reserved = []string{"sloth_id", "sloth_service", "sloth_slo", "sloth_window", "sloth_severity", "alertname", "le"}

func checkLabels(bad func(string, string, ...any), path string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		switch {
		case !labelNameRE.MatchString(k) || strings.HasPrefix(k, "__"):
			bad(path+"."+k, "%q is not a valid Prometheus label name", k)
		case slices.Contains(reserved, k):
			bad(path+"."+k, "%q is set by relia itself", k)
		}
	}
}

const windowPlaceholder = "{{.window}}"

func (s *SLO) validateSLI(bad func(string, string, ...any)) {
	sli := s.Spec.SLI
	switch {
	case sli.Availability == nil && sli.Latency == nil:
		bad("spec.sli", "needs an SLI kind: availability or latency")
	case sli.Availability != nil && sli.Latency != nil:
		bad("spec.sli", "takes one SLI kind, got availability and latency")
	case sli.Availability != nil:
		a := sli.Availability
		const path = "spec.sli.availability"
		switch {
		case a.ErrorQuery != "" && a.GoodQuery != "":
			bad(path+".goodQuery", "give errorQuery or goodQuery, not both")
		case (a.ErrorQuery != "" || a.GoodQuery != "") && a.TotalQuery == "":
			bad(path+".totalQuery", "missing: the failed (or good) events need the total to be a share of")
		case a.TotalQuery != "" && a.ErrorQuery == "" && a.GoodQuery == "":
			bad(path+".errorQuery", "missing: totalQuery needs errorQuery or goodQuery beside it")
		case a.TotalQuery == "" && len(a.GoodClasses) == 0:
			bad(path, "needs errorQuery (or goodQuery) and totalQuery (Prometheus), goodClasses (relia runs), or both")
		}
		for _, q := range []struct{ field, query string }{{"errorQuery", a.ErrorQuery}, {"goodQuery", a.GoodQuery}, {"totalQuery", a.TotalQuery}} {
			switch {
			case q.query == "":
			case !placeholderRE.MatchString(q.query):
				bad(path+"."+q.field, "missing the %s placeholder where the range goes, as in rate(x[%s]): relia evaluates the query over several windows", windowPlaceholder, windowPlaceholder)
			case !readsSeries(q.query):
				bad(path+"."+q.field, "reads no series: an SLI counts a service's events, which a constant cannot")
			}
		}
		for i, c := range a.GoodClasses {
			if _, err := outcome.ParseClass(c); err != nil {
				bad(fmt.Sprintf("spec.sli.availability.goodClasses[%d]", i), "%v", err)
			}
		}
	case sli.Latency != nil:
		s.validateLatency(bad, sli.Latency)
	}
}

func (s *SLO) validateLatency(bad func(string, string, ...any), l *Latency) {
	const path = "spec.sli.latency"
	if l.Threshold <= 0 {
		bad(path+".threshold", "must be positive")
	}
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if strings.HasSuffix(l.Metric, suffix) {
			bad(path+".metric", "name the histogram without its %s suffix: %s", suffix, strings.TrimSuffix(l.Metric, suffix))
		}
	}
	if l.Metric != "" && !alertNameRE.MatchString(l.Metric) {
		bad(path+".metric", "%q is not a valid metric name", l.Metric)
	}
	if strings.ContainsAny(strings.Trim(strings.TrimSpace(l.Selector), "{}"), "{}") {
		bad(path+".selector", "write label matchers only, as in job=\"api\",http_route=\"/pay\"")
	}
	switch l.Histogram {
	case "", Classic:
		if len(l.Buckets) > 0 {
			if err := CheckThreshold(l.Threshold, l.Buckets); err != nil {
				bad(path+".threshold", "%v", err)
			}
		}
	case Native:
		if len(l.Buckets) > 0 {
			bad(path+".buckets", "native histograms have no fixed buckets; buckets apply to classic histograms")
		}
	default:
		bad(path+".histogram", "%q is not a histogram kind (classic or native)", l.Histogram)
	}
}

// CheckThreshold reports whether a latency threshold sits on one of a
// classic histogram's bucket bounds (in seconds, as Prometheus's le
// labels): a classic histogram counts events at or under each bound and
// cannot tell how many fell under a value between two bounds, so an SLI
// at such a threshold would be silently wrong. Bounds must ascend.
func CheckThreshold(threshold time.Duration, buckets []float64) error {
	t := threshold.Seconds()
	for i, b := range buckets {
		if math.IsNaN(b) || b <= 0 || i > 0 && b <= buckets[i-1] {
			return fmt.Errorf("bucket bounds must be positive and ascending, got %v", buckets)
		}
	}
	for _, b := range buckets {
		if sameBound(b, t) {
			return nil
		}
	}
	below, above := "none", "none"
	for _, b := range buckets {
		if b < t {
			below = formatFloat(b)
		} else if above == "none" {
			above = formatFloat(b)
		}
	}
	return fmt.Errorf("%s (%gs) is not a bucket bound of the histogram (the nearest are %s and %s): the share of events at or under it cannot be read from the buckets",
		config.FormatDuration(threshold), t, below, above)
}

// sameBound compares a bucket bound with a threshold in seconds, allowing
// for the rounding of a decimal bound ("0.1") to binary.
func sameBound(bound, seconds float64) bool {
	return math.Abs(bound-seconds) <= 1e-9*math.Max(math.Abs(bound), math.Abs(seconds))
}

// formatFloat writes x with up to 12 significant digits and no binary
// noise: 0.1, 14.4, 0.001.
func formatFloat(x float64) string {
	return strconv.FormatFloat(round12(x), 'g', -1, 64)
}

func round12(x float64) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', 12, 64), 64)
	if err != nil {
		return x
	}
	return v
}

func (s *SLO) validateAlerting(bad func(string, string, ...any)) {
	a := s.Spec.Alerting
	if a.Name != "" && !alertNameRE.MatchString(a.Name) {
		bad("spec.alerting.name", "%q is not a valid alert name (letters, digits and '_')", a.Name)
	}
	if a.MinEvents < 0 {
		bad("spec.alerting.minEvents", "%d is negative", a.MinEvents)
	}
	checkLabels(bad, "spec.alerting.labels", a.Labels)
	period := s.Period()
	budget := s.ErrorBudget()
	for _, sev := range a.severities() {
		base := "spec.alerting." + sev.name
		checkLabels(bad, base+".labels", sev.cfg.Labels)
		if sev.cfg.Disabled {
			continue
		}
		windows, defaults := sev.windows()
		for i, w := range windows {
			field := func(name string) string { return fmt.Sprintf("%s.windows[%d].%s", base, i, name) }
			if defaults {
				// The default windows live nowhere in the file.
				field = func(string) string { return base }
			}
			s.validateWindow(bad, field, w, period, budget, defaults)
		}
	}
}

func (s *SLO) validateWindow(bad func(string, string, ...any), field func(string) string, w Window, period time.Duration, budget float64, defaults bool) {
	what, hint := "window", ""
	if defaults {
		what = "default window"
		hint = fmt.Sprintf("; set %s.windows for this period", field(""))
	}
	if w.Long <= 0 {
		bad(field("long"), "must be positive")
		return
	}
	if w.Long > period {
		bad(field("long"), "%s %s is longer than the period %s%s", what, config.FormatDuration(w.Long), config.FormatDuration(period), hint)
	}
	short := w.short()
	if short >= w.Long {
		bad(field("short"), "%s %s must be shorter than the long window %s", what, config.FormatDuration(short), config.FormatDuration(w.Long))
	}
	if w.Short == 0 && short < time.Minute {
		bad(field("short"), "the default short window (long/12) is %s, too short for rate(); set it", config.FormatDuration(short))
	}
	switch {
	case w.BurnRate != 0 && w.Budget != 0:
		bad(field("burnRate"), "give burnRate or budget, not both")
		return
	case w.BurnRate == 0 && w.Budget == 0:
		bad(field("burnRate"), "missing: give burnRate (14.4) or budget (2%%)")
		return
	case w.BurnRate < 0 || math.IsNaN(w.BurnRate):
		bad(field("burnRate"), "%v is negative", w.BurnRate)
		return
	}
	rate := w.burnRate(period)
	if defaults {
		rate = math.Max(rate, 1) // as Alerts applies them
	}
	if rate < 1 {
		bad(field("burnRate"), "burn rate %s is below 1: the alert would fire while the budget is on course to last the period", formatFloat(rate))
	}
	if rate*budget >= 1 {
		if defaults {
			hint = strings.Replace(hint, "for this period", "with lower burn rates", 1)
		}
		bad(field("burnRate"), "burn rate %s needs an error ratio above %s, which cannot happen at objective %v%s",
			formatFloat(rate), formatFloat(rate*budget), s.Spec.Objective, hint)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Encode writes SLOs as relia documents (kind: SLO), defaults left out:
// the form to keep once another tool's spec has been imported.
func Encode(slos []*SLO) ([]byte, error) {
	var b []byte
	for i, s := range slos {
		if i > 0 {
			b = append(b, "---\n"...)
		}
		out, err := config.Marshal(Kind, s)
		if err != nil {
			return nil, fmt.Errorf("writing SLO %s: %w", s.ID(), err)
		}
		b = append(b, out...)
	}
	return b, nil
}

// JSONSchema returns the JSON Schema of `kind: SLO` documents, for
// editors (docs/schema/slo.json).
func JSONSchema() ([]byte, error) { return config.Schema(Kind, SLO{}) }
