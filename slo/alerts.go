package slo

import (
	"fmt"
	"maps"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/relia-dev/relia/internal/config"
)

// Severities of SLO alerts.
const (
	Page   = "page"
	Ticket = "ticket"
)

// workbookWindows are the SRE Workbook's window pairs ("Alerting on
// SLOs", table 5-8) for a 30-day period, written as the share of the
// budget each spends within its long window rather than as the burn
// rates 14.4, 6, 3 and 1: that form scales to any period.
//
// Scaling keeps the windows and the budget shares and derives each burn
// rate as share*period/long, as Sloth does: over 28 days the page alert
// fires at 13.44x over 1h (2% of a 28-day budget in one hour). Burn rates
// below 1 are raised to 1: a service burning at or under 1 is on course
// to meet its objective, and alerting on it would page on a healthy
// service (over 28 days the Workbook's last ticket pair would otherwise
// fire at 0.93x).
func workbookWindows(severity string) []Window {
	switch severity {
	case Page:
		return []Window{
			{Long: time.Hour, Short: 5 * time.Minute, Budget: 0.02},
			{Long: 6 * time.Hour, Short: 30 * time.Minute, Budget: 0.05},
		}
	case Ticket:
		return []Window{
			{Long: config.Day, Short: 2 * time.Hour, Budget: 0.10},
			{Long: 3 * config.Day, Short: 6 * time.Hour, Budget: 0.10},
		}
	}
	return nil
}

// short returns the short window, Long/12 by default.
func (w Window) short() time.Duration {
	if w.Short != 0 {
		return w.Short
	}
	return w.Long / 12
}

// burnRate returns the window's burn rate over period.
func (w Window) burnRate(period time.Duration) float64 {
	if w.BurnRate != 0 {
		return w.BurnRate
	}
	return BurnRateFor(float64(w.Budget), w.Long, period)
}

// severity is one of an SLO's alerts with its name.
type severity struct {
	name string
	cfg  Severity
}

// severities lists the page and the ticket alert.
func (a Alerting) severities() []severity { return []severity{{Page, a.Page}, {Ticket, a.Ticket}} }

// windows returns the severity's window pairs, the Workbook's when the
// spec gives none (defaults).
func (s severity) windows() (windows []Window, defaults bool) {
	if len(s.cfg.Windows) > 0 {
		return s.cfg.Windows, false
	}
	return workbookWindows(s.name), true
}

// BurnWindow is one window pair of an alert, resolved: the alert's
// condition holds when the error ratio over both Long and Short exceeds
// BurnRate times the error budget.
type BurnWindow struct {
	Long, Short time.Duration
	BurnRate    float64
}

// Alert is one of an SLO's burn-rate alerts with every default applied:
// what the generated Prometheus rule checks and what the in-run evaluator
// replays.
type Alert struct {
	// Severity is Page or Ticket.
	Severity string
	// Name is the alertname.
	Name string
	// Windows are the pairs, any of which fires the alert.
	Windows []BurnWindow
	// For is how long the condition must hold before the alert fires.
	For time.Duration
	// MinEvents is the least number of events each pair's long window
	// must hold for the pair to fire.
	MinEvents int64
	// Labels and Annotations are the rule's own, sloth_severity included.
	Labels, Annotations map[string]string
}

// Alerts returns the SLO's enabled alerts, page first, with defaults
// applied.
func (s *SLO) Alerts() []Alert {
	a := s.Spec.Alerting
	period := s.Period()
	var out []Alert
	for _, sev := range a.severities() {
		if sev.cfg.Disabled {
			continue
		}
		windows, defaults := sev.windows()
		al := Alert{Severity: sev.name, Name: s.alertName(), For: sev.cfg.For, MinEvents: a.MinEvents}
		for _, w := range windows {
			rate := w.burnRate(period)
			if defaults {
				rate = math.Max(rate, 1)
			}
			al.Windows = append(al.Windows, BurnWindow{Long: w.Long, Short: w.short(), BurnRate: rate})
		}
		al.Labels = map[string]string{"sloth_severity": sev.name}
		maps.Copy(al.Labels, a.Labels)
		maps.Copy(al.Labels, sev.cfg.Labels)
		al.Annotations = s.defaultAnnotations(al)
		maps.Copy(al.Annotations, a.Annotations)
		maps.Copy(al.Annotations, sev.cfg.Annotations)
		out = append(out, al)
	}
	return out
}

// alertName returns the configured alert name or one made of the
// service's and SLO's names: checkout + availability ->
// CheckoutAvailabilityBudgetBurn.
func (s *SLO) alertName() string {
	if s.Spec.Alerting.Name != "" {
		return s.Spec.Alerting.Name
	}
	name := camel(s.Spec.Service) + camel(s.Metadata.Name) + "BudgetBurn"
	if name[0] >= '0' && name[0] <= '9' {
		name = "SLO" + name
	}
	return name
}

// camel turns "checkout-api.v2" into "CheckoutApiV2".
func camel(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) || r > unicode.MaxASCII {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// defaultAnnotations says what fired and what it means, in the words of
// Sloth's annotations (title, summary) plus a description of the
// thresholds.
func (s *SLO) defaultAnnotations(a Alert) map[string]string {
	var pairs []string
	for _, w := range a.Windows {
		pairs = append(pairs, fmt.Sprintf("%sx over %s and %s", formatFloat(w.BurnRate),
			config.FormatDuration(w.Long), config.FormatDuration(w.Short)))
	}
	ann := map[string]string{
		"title":   fmt.Sprintf("(%s) {{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is too fast.", a.Severity),
		"summary": "{{$labels.sloth_service}} {{$labels.sloth_slo}} SLO error budget burn rate is over expected.",
		"description": fmt.Sprintf("Objective %v over %s. The error budget burns faster than %s.",
			s.Spec.Objective, config.FormatDuration(s.Period()), strings.Join(pairs, ", or ")),
	}
	if s.Spec.Alerting.RunbookURL != "" {
		ann["runbook_url"] = s.Spec.Alerting.RunbookURL
	}
	return ann
}
