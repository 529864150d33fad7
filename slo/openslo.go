package slo

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/internal/config"
)

// The OpenSLO v1 objects relia reads, with every field of the v1 spec so
// that decoding stays strict (a typo is an error, not a silently ignored
// field).

type osMetadata struct {
	Name        string            `yaml:"name" config:"required"`
	DisplayName string            `yaml:"displayName"`
	Labels      map[string]any    `yaml:"labels"` // a value or a list of values
	Annotations map[string]string `yaml:"annotations"`
}

type osSLO struct {
	Metadata osMetadata `yaml:"metadata" config:"required"`
	Spec     struct {
		Description     string         `yaml:"description"`
		Service         string         `yaml:"service" config:"required"`
		Indicator       *osInlineSLI   `yaml:"indicator"`
		IndicatorRef    string         `yaml:"indicatorRef"`
		BudgetingMethod string         `yaml:"budgetingMethod"`
		TimeWindow      []osTimeWindow `yaml:"timeWindow"`
		Objectives      []osObjective  `yaml:"objectives" config:"required"`
		AlertPolicies   []yaml.Node    `yaml:"alertPolicies"` // names, refs or inline policies
	} `yaml:"spec" config:"required"`
}

type osInlineSLI struct {
	Metadata osMetadata `yaml:"metadata" config:"required"`
	Spec     osSLISpec  `yaml:"spec" config:"required"`
}

type osSLI struct {
	Metadata osMetadata `yaml:"metadata" config:"required"`
	Spec     osSLISpec  `yaml:"spec" config:"required"`
}

type osSLISpec struct {
	Description     string         `yaml:"description"`
	ThresholdMetric *osMetricSpec  `yaml:"thresholdMetric"`
	RatioMetric     *osRatioMetric `yaml:"ratioMetric"`
}

type osRatioMetric struct {
	Counter bool          `yaml:"counter"`
	Good    *osMetricSpec `yaml:"good"`
	Bad     *osMetricSpec `yaml:"bad"`
	Total   *osMetricSpec `yaml:"total"`
	RawType string        `yaml:"rawType"`
	Raw     *osMetricSpec `yaml:"raw"`
}

type osMetricSpec struct {
	MetricSource struct {
		MetricSourceRef string         `yaml:"metricSourceRef"`
		Type            string         `yaml:"type"`
		Spec            map[string]any `yaml:"spec"`
	} `yaml:"metricSource" config:"required"`
}

type osTimeWindow struct {
	Duration  string `yaml:"duration" config:"required"`
	IsRolling bool   `yaml:"isRolling"`
	Calendar  *struct {
		StartTime string `yaml:"startTime"`
		TimeZone  string `yaml:"timeZone"`
	} `yaml:"calendar"`
}

type osObjective struct {
	DisplayName     string    `yaml:"displayName"`
	Op              string    `yaml:"op"`
	Value           *float64  `yaml:"value"`
	Target          *float64  `yaml:"target"`
	TargetPercent   *float64  `yaml:"targetPercent"`
	TimeSliceTarget *float64  `yaml:"timeSliceTarget"`
	TimeSliceWindow string    `yaml:"timeSliceWindow"`
	Indicator       yaml.Node `yaml:"indicator"`
	IndicatorRef    string    `yaml:"indicatorRef"`
	CompositeWeight *float64  `yaml:"compositeWeight"`
}

type osAlertPolicy struct {
	Kind     string     `yaml:"kind"`
	Metadata osMetadata `yaml:"metadata" config:"required"`
	Spec     struct {
		Description         string      `yaml:"description"`
		AlertWhenNoData     bool        `yaml:"alertWhenNoData"`
		AlertWhenResolved   bool        `yaml:"alertWhenResolved"`
		AlertWhenBreaching  bool        `yaml:"alertWhenBreaching"`
		Conditions          []yaml.Node `yaml:"conditions" config:"required"` // refs or inline conditions
		NotificationTargets []yaml.Node `yaml:"notificationTargets"`
	} `yaml:"spec" config:"required"`
}

type osAlertCondition struct {
	Kind     string     `yaml:"kind"`
	Metadata osMetadata `yaml:"metadata" config:"required"`
	Spec     struct {
		Description string `yaml:"description"`
		Severity    string `yaml:"severity" config:"required"`
		Condition   struct {
			Kind           string  `yaml:"kind" config:"required"`
			Op             string  `yaml:"op"`
			Threshold      float64 `yaml:"threshold" config:"required"`
			LookbackWindow string  `yaml:"lookbackWindow" config:"required"`
			AlertAfter     string  `yaml:"alertAfter"`
		} `yaml:"condition" config:"required"`
	} `yaml:"spec" config:"required"`
}

// located is an OpenSLO object with the document and path it was read
// from, so that errors about it point at it.
type located[T any] struct {
	v    T
	doc  config.Document
	path string
}

// openSLOSet is every OpenSLO object of a file, by kind and name.
type openSLOSet struct {
	slis       map[string]located[osSLI]
	policies   map[string]located[osAlertPolicy]
	conditions map[string]located[osAlertCondition]
}

// importOpenSLO turns OpenSLO v1 documents into relia SLOs: each SLO with
// a ratioMetric SLI (inline or by indicatorRef) of Prometheus queries,
// occurrences budgeting and a rolling time window; one relia SLO per
// objective. Alert policies' burnrate conditions become window pairs of
// the page or ticket alert by severity (page, critical, high / ticket,
// warning, medium, low), each condition's lookbackWindow the long window
// and a twelfth of it the short one (the Workbook's ratio), alertAfter
// the alert's for:. An SLO without alert policies gets relia's defaults.
// Service, DataSource and AlertNotificationTarget documents are accepted
// and not used.
func importOpenSLO(docs []config.Document) ([]*SLO, error) {
	set := openSLOSet{slis: map[string]located[osSLI]{}, policies: map[string]located[osAlertPolicy]{}, conditions: map[string]located[osAlertCondition]{}}
	var errs []error
	var slos []located[osSLO]
	for _, d := range docs {
		var err error
		switch d.Kind {
		case "SLO":
			var v osSLO
			if err = d.Decode(&v); err == nil {
				slos = append(slos, located[osSLO]{v, d, ""})
			}
		case "SLI":
			var v osSLI
			if err = d.Decode(&v); err == nil {
				set.slis[v.Metadata.Name] = located[osSLI]{v, d, ""}
			}
		case "AlertPolicy":
			var v osAlertPolicy
			if err = d.Decode(&v); err == nil {
				set.policies[v.Metadata.Name] = located[osAlertPolicy]{v, d, ""}
			}
		case "AlertCondition":
			var v osAlertCondition
			if err = d.Decode(&v); err == nil {
				set.conditions[v.Metadata.Name] = located[osAlertCondition]{v, d, ""}
			}
		case "Service", "DataSource", "AlertNotificationTarget":
		default:
			err = d.Errorf("kind", "%q is not an OpenSLO v1 kind relia reads (SLO, SLI, AlertPolicy, AlertCondition)", d.Kind)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	var out []*SLO
	for _, s := range slos {
		got, err := set.convert(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, got...)
	}
	return out, errors.Join(errs...)
}

// openSLOPaths maps relia field paths to OpenSLO's, for errors.
var openSLOPaths = []struct{ relia, openslo string }{
	{"metadata", "metadata"},
	{"spec.service", "spec.service"},
	{"spec.description", "spec.description"},
	{"spec.period", "spec.timeWindow"},
	{"spec.sli", "spec.indicator"},
	{"spec.alerting", "spec.alertPolicies"},
}

func (set openSLOSet) convert(in located[osSLO]) ([]*SLO, error) {
	d, spec := in.doc, in.v.Spec
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, d.Errorf(path, format, args...)) }

	switch spec.BudgetingMethod {
	case "", "Occurrences":
	default:
		bad("spec.budgetingMethod", "%q cannot be imported: relia budgets occurrences (events), not time slices", spec.BudgetingMethod)
	}
	var period time.Duration
	switch {
	case len(spec.TimeWindow) > 1:
		bad("spec.timeWindow[1]", "relia SLOs have one time window")
	case len(spec.TimeWindow) == 1:
		tw := spec.TimeWindow[0]
		if !tw.IsRolling || tw.Calendar != nil {
			bad("spec.timeWindow[0]", "calendar windows cannot be imported: relia periods are rolling (isRolling: true)")
		}
		p, err := config.ParseDuration(tw.Duration)
		if err != nil {
			bad("spec.timeWindow[0].duration", "%v", err)
		}
		period = p
	}

	sli, sliPath, err := set.indicator(in)
	if err != nil {
		errs = append(errs, err)
	}
	alerting, err := set.alerting(in)
	if err != nil {
		errs = append(errs, err)
	}
	labels, err := openSLOLabels(d, "metadata.labels", in.v.Metadata.Labels)
	if err != nil {
		errs = append(errs, err)
	}
	var out []*SLO
	for i, o := range spec.Objectives {
		opath := fmt.Sprintf("spec.objectives[%d]", i)
		var target float64
		switch {
		case o.Target != nil && o.TargetPercent != nil:
			bad(opath+".target", "give target or targetPercent, not both")
			continue
		case o.Target != nil:
			target = *o.Target
		case o.TargetPercent != nil:
			r, err := config.ParseRatio(strconv.FormatFloat(*o.TargetPercent, 'f', -1, 64) + "%")
			if err != nil {
				bad(opath+".targetPercent", "%v", err)
				continue
			}
			target = float64(r)
		default:
			bad(opath, "missing target (or targetPercent)")
			continue
		}
		if o.TimeSliceTarget != nil || o.TimeSliceWindow != "" {
			bad(opath, "time slices cannot be imported: relia budgets occurrences")
			continue
		}
		if o.Indicator.Kind != 0 || o.IndicatorRef != "" {
			bad(opath, "per-objective indicators cannot be imported: give the SLO one indicator")
			continue
		}
		name := in.v.Metadata.Name
		if len(spec.Objectives) > 1 {
			suffix := strings.Trim(regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(strings.ToLower(o.DisplayName), "-"), "-")
			if suffix == "" {
				suffix = strconv.Itoa(i)
			}
			name += "-" + suffix
		}
		op := opath
		s := &SLO{
			Metadata: Metadata{Name: name, Labels: labels},
			Spec: Spec{
				Service:     spec.Service,
				Description: spec.Description,
				Objective:   config.Ratio(target),
				Period:      period,
				SLI:         sli,
				Alerting:    alerting,
			},
			src: source{doc: d, path: func(p string) string {
				if strings.HasPrefix(p, "spec.objective") {
					return op
				}
				if strings.HasPrefix(p, "spec.sli") {
					return sliPath
				}
				for _, m := range openSLOPaths {
					if rest, ok := strings.CutPrefix(p, m.relia); ok {
						return m.openslo + rest
					}
				}
				return "spec"
			}},
		}
		out = append(out, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// indicator converts the SLO's SLI, inline or by reference.
func (set openSLOSet) indicator(in located[osSLO]) (SLI, string, error) {
	d, spec := in.doc, in.v.Spec
	var sli osSLISpec
	path := "spec.indicator.spec"
	switch {
	case spec.Indicator != nil && spec.IndicatorRef != "":
		return SLI{}, "", d.Errorf("spec.indicatorRef", "give indicator or indicatorRef, not both")
	case spec.Indicator != nil:
		sli = spec.Indicator.Spec
	case spec.IndicatorRef != "":
		ref, ok := set.slis[spec.IndicatorRef]
		if !ok {
			return SLI{}, "", d.Errorf("spec.indicatorRef", "no SLI named %q in the file", spec.IndicatorRef)
		}
		sli, d, path = ref.v.Spec, ref.doc, "spec"
	default:
		return SLI{}, "", d.Errorf("spec", "missing indicator (or indicatorRef)")
	}
	errAt := func(p, format string, args ...any) error { return d.Errorf(path+p, format, args...) }
	if sli.ThresholdMetric != nil {
		return SLI{}, "", errAt(".thresholdMetric", "threshold metrics cannot be imported: relia SLIs count good and total events (ratioMetric)")
	}
	r := sli.RatioMetric
	if r == nil {
		return SLI{}, "", errAt("", "missing ratioMetric")
	}
	if r.Raw != nil || r.RawType != "" {
		return SLI{}, "", errAt(".ratioMetric.raw", "raw ratios cannot be imported: relia sums events over long windows rather than averaging ratios; give good (or bad) and total")
	}
	if r.Total == nil {
		return SLI{}, "", errAt(".ratioMetric", "missing total")
	}
	query := func(field string, m *osMetricSpec) (string, error) {
		mp := path + ".ratioMetric." + field + ".metricSource"
		if t := m.MetricSource.Type; t != "" && !strings.EqualFold(t, "prometheus") {
			return "", d.Errorf(mp+".type", "%q sources cannot be imported: relia reads Prometheus", t)
		}
		q, ok := m.MetricSource.Spec["query"].(string)
		if !ok || strings.TrimSpace(q) == "" {
			return "", d.Errorf(mp+".spec", "missing query (a PromQL string)")
		}
		q = strings.TrimSpace(q)
		if placeholderRE.MatchString(q) {
			return q, nil
		}
		if !r.Counter {
			return "", d.Errorf(mp+".spec.query", "needs the %s placeholder (rate(x[%s])), or the metric to be a counter (counter: true)", windowPlaceholder, windowPlaceholder)
		}
		rated, err := rateCounters(q)
		if err != nil {
			return "", d.Errorf(mp+".spec.query", "%v", err)
		}
		return rated, nil
	}
	total, err := query("total", r.Total)
	if err != nil {
		return SLI{}, "", err
	}
	a := &Availability{TotalQuery: total}
	switch {
	case r.Good != nil && r.Bad != nil:
		return SLI{}, "", errAt(".ratioMetric.bad", "give good or bad, not both")
	case r.Bad != nil:
		if a.ErrorQuery, err = query("bad", r.Bad); err != nil {
			return SLI{}, "", err
		}
	case r.Good != nil:
		if a.GoodQuery, err = query("good", r.Good); err != nil {
			return SLI{}, "", err
		}
	default:
		return SLI{}, "", errAt(".ratioMetric", "missing good (or bad)")
	}
	return SLI{Availability: a}, path, nil
}

// severityOf maps OpenSLO's free-form severities to relia's two.
func severityOf(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "page", "critical", "high":
		return Page, true
	case "ticket", "warning", "medium", "low", "info":
		return Ticket, true
	}
	return "", false
}

// alerting converts the SLO's alert policies.
func (set openSLOSet) alerting(in located[osSLO]) (Alerting, error) {
	d := in.doc
	var a Alerting
	var errs []error
	configured := map[string]bool{}
	for i := range in.v.Spec.AlertPolicies {
		ppath := fmt.Sprintf("spec.alertPolicies[%d]", i)
		policy, err := resolveRef(set.policies, "AlertPolicy", "alertPolicyRef", d, ppath)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for j := range policy.v.Spec.Conditions {
			cpath := joinPath(policy.path, fmt.Sprintf("spec.conditions[%d]", j))
			cond, err := resolveRef(set.conditions, "AlertCondition", "conditionRef", policy.doc, cpath)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c := cond.v.Spec
			cerr := func(p, format string, args ...any) {
				errs = append(errs, cond.doc.Errorf(joinPath(cond.path, p), format, args...))
			}
			if !strings.EqualFold(c.Condition.Kind, "burnrate") {
				cerr("spec.condition.kind", "%q conditions cannot be imported: relia alerts on burn rates (kind: burnrate)", c.Condition.Kind)
				continue
			}
			sev, ok := severityOf(c.Severity)
			if !ok {
				cerr("spec.severity", "%q is not a severity relia maps (page, critical, high; ticket, warning, medium, low, info)", c.Severity)
				continue
			}
			long, err := config.ParseDuration(c.Condition.LookbackWindow)
			if err != nil {
				cerr("spec.condition.lookbackWindow", "%v", err)
				continue
			}
			var after time.Duration
			if c.Condition.AlertAfter != "" {
				if after, err = config.ParseDuration(c.Condition.AlertAfter); err != nil {
					cerr("spec.condition.alertAfter", "%v", err)
					continue
				}
			}
			if math.IsNaN(c.Condition.Threshold) || c.Condition.Threshold <= 0 {
				cerr("spec.condition.threshold", "%v is not a positive burn rate", c.Condition.Threshold)
				continue
			}
			target := &a.Page
			if sev == Ticket {
				target = &a.Ticket
			}
			target.Windows = append(target.Windows, Window{Long: long, Short: long / 12, BurnRate: c.Condition.Threshold})
			target.For = max(target.For, after)
			configured[sev] = true
		}
	}
	if len(configured) > 0 {
		// Policies name the alerts the SLO has; a severity they leave out
		// is not wanted.
		a.Page.Disabled = !configured[Page]
		a.Ticket.Disabled = !configured[Ticket]
	}
	return a, errors.Join(errs...)
}

// resolveRef resolves an entry that is either a reference to a named
// object of kind (a bare name or {refKey: name}) or the object inline.
func resolveRef[T any](named map[string]located[T], kind, refKey string, d config.Document, path string) (located[T], error) {
	if name, ok := refName(d.At(path), refKey); ok {
		v, found := named[name]
		if !found {
			return v, d.Errorf(path, "no %s named %q in the file", kind, name)
		}
		return v, nil
	}
	var v T
	if err := d.DecodePath(path, &v); err != nil {
		return located[T]{}, err
	}
	return located[T]{v, d, path}, nil
}

// joinPath joins two field paths, either of which may be empty.
func joinPath(a, b string) string {
	if a == "" || b == "" {
		return a + b
	}
	return a + "." + b
}

// refName reads a reference written as a bare name or as {key: name}.
func refName(n *yaml.Node, key string) (string, bool) {
	if n.Kind == yaml.ScalarNode {
		return n.Value, true
	}
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 && n.Content[0].Value == key {
		return n.Content[1].Value, true
	}
	return "", false
}

// openSLOLabels flattens OpenSLO labels, whose values may be lists, into
// Prometheus labels (lists joined with commas).
func openSLOLabels(d config.Document, path string, in map[string]any) (map[string]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, k := range sortedKeys(in) {
		switch v := in[k].(type) {
		case []any:
			var parts []string
			for _, x := range v {
				parts = append(parts, fmt.Sprint(x))
			}
			out[k] = strings.Join(parts, ",")
		case map[string]any:
			return nil, d.Errorf(path+"."+k, "expected a value or a list of values")
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}
