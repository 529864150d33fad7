package slo

import (
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// Kind is the kind: of SLO documents.
const Kind = "SLO"

// DefaultPeriod is the period of an SLO that names none: 30 days, the
// period the SRE Workbook's alerting numbers are given for.
const DefaultPeriod = 30 * config.Day

// SLO is one service level objective, the body of a `kind: SLO`
// document: which share of a service's events must be good over a
// rolling period. Every field's comment is user documentation.
type SLO struct {
	// Metadata names the SLO.
	Metadata Metadata `yaml:"metadata" config:"required"`
	// Spec is what the SLO promises.
	Spec Spec `yaml:"spec" config:"required"`

	// src is the document the SLO was read from; validation errors point
	// into it. Empty for SLOs built in Go.
	src source
	// k8s is the Kubernetes object the SLO was read from, if any.
	k8s *k8sObject
}

// Metadata names an SLO.
type Metadata struct {
	// Name identifies the SLO within its service: letters, digits, '-',
	// '_' and '.'. The SLO's id, used in every generated series, is
	// "<service>-<name>".
	Name string `yaml:"name" config:"required"`
	// Labels are added to every series and alert generated for the SLO
	// (team, tier, ...).
	Labels map[string]string `yaml:"labels"`
}

// Spec is what an SLO promises.
type Spec struct {
	// Service is the service the SLO is about.
	Service string `yaml:"service" config:"required"`
	// Description says what the SLO means to its users.
	Description string `yaml:"description"`
	// Owner is the team or person answerable for the SLO.
	Owner string `yaml:"owner"`
	// Objective is the share of events that must be good, in (0, 1):
	// 0.999 or "99.9%".
	Objective config.Ratio `yaml:"objective" config:"required"`
	// Period is the rolling window the objective holds over: "30d"
	// (default), "28d", "7d", "4w"...
	Period time.Duration `yaml:"period"`
	// SLI says which events are good.
	SLI SLI `yaml:"sli" config:"required"`
	// Alerting configures the burn-rate alerts. The zero value gives the
	// SRE Workbook's page and ticket alerts scaled to the period.
	Alerting Alerting `yaml:"alerting"`
}

// SLI says which events are good: exactly one of its kinds is set.
type SLI struct {
	// Availability counts failed events against all events.
	Availability *Availability `yaml:"availability"`
	// Latency counts events slower than a threshold against all events.
	Latency *Latency `yaml:"latency"`
}

// OneOfNoun makes the config loader report SLI kinds it does not know as
// such.
func (SLI) OneOfNoun() string { return "SLI kind" }

// Availability is an SLI of failed events against all events.
type Availability struct {
	// ErrorQuery is PromQL for the per-second rate of failed events, with
	// {{.window}} where the range goes:
	// sum(rate(http_requests_total{job="api",code=~"5..|429"}[{{.window}}])).
	// Each query is summed into one series. When it finds no series, the
	// service has failed nothing only if it reads the series the total
	// query reads, narrowed by more label matchers (as here); otherwise
	// its metric is missing and so is the SLI, never a good one.
	ErrorQuery string `yaml:"errorQuery"`
	// GoodQuery is PromQL for the per-second rate of good events, with
	// {{.window}}, for services that count successes: give it instead of
	// errorQuery, and failed events are the total minus the good ones.
	GoodQuery string `yaml:"goodQuery"`
	// TotalQuery is PromQL for the per-second rate of all events, with
	// {{.window}}: sum(rate(http_requests_total{job="api"}[{{.window}}])).
	TotalQuery string `yaml:"totalQuery"`
	// GoodClasses are the relia outcome classes that count as good when
	// the SLO is evaluated on relia's own recorder during a run (default
	// [ok]). A spec with classes and no queries is evaluated in runs
	// only.
	GoodClasses []string `yaml:"goodClasses"`
}

// Latency is an SLI of events slower than a threshold against all
// events, read from a latency histogram in seconds.
type Latency struct {
	// Metric is the histogram's name without suffix:
	// http_server_request_duration_seconds. Needed for Prometheus rules;
	// runs read relia's recorder instead.
	Metric string `yaml:"metric"`
	// Selector is the label matchers that pick the service's series:
	// job="api",http_route="/pay" (braces optional).
	Selector string `yaml:"selector"`
	// Threshold is the latency at or under which an event is good.
	Threshold time.Duration `yaml:"threshold" config:"required"`
	// Histogram is "classic" (le buckets, the default) or "native"
	// (Prometheus native histograms).
	Histogram string `yaml:"histogram"`
	// Buckets are the classic histogram's upper bounds in seconds, as the
	// service declares them. When given, the threshold must be one of
	// them: a classic histogram cannot tell how many events fell under a
	// value between two bounds.
	Buckets []float64 `yaml:"buckets"`
}

// Histogram kinds of Latency.Histogram.
const (
	Classic = "classic"
	Native  = "native"
)

// Alerting configures an SLO's multiwindow, multi-burn-rate alerts.
type Alerting struct {
	// Name is the alert's name (alertname); default: the service and SLO
	// names in CamelCase followed by "BudgetBurn".
	Name string `yaml:"name"`
	// Labels are added to both alerts.
	Labels map[string]string `yaml:"labels"`
	// Annotations are added to both alerts; Prometheus templates
	// ({{$labels.sloth_service}}) work.
	Annotations map[string]string `yaml:"annotations"`
	// RunbookURL is added to both alerts as the runbook_url annotation.
	RunbookURL string `yaml:"runbookURL"`
	// MinEvents guards low-traffic services: an alert fires only when its
	// long window holds at least this many events, so that a single
	// failure among a handful of requests does not page. 0 (the default)
	// turns the guard off.
	MinEvents int64 `yaml:"minEvents"`
	// Page is the alert that wakes someone up.
	Page Severity `yaml:"page"`
	// Ticket is the alert that files work for office hours.
	Ticket Severity `yaml:"ticket"`
}

// Severity configures one of an SLO's alerts.
type Severity struct {
	// Disabled leaves the alert out.
	Disabled bool `yaml:"disabled"`
	// Labels are added to this alert only.
	Labels map[string]string `yaml:"labels"`
	// Annotations are added to this alert only.
	Annotations map[string]string `yaml:"annotations"`
	// For is how long the condition must hold before the alert fires
	// (Prometheus's for:); 0, the default, fires at once, which the short
	// window already makes safe from blips.
	For time.Duration `yaml:"for"`
	// Windows replace the default window pairs; the alert fires when any
	// pair fires.
	Windows []Window `yaml:"windows"`
}

// Window is one window pair of a burn-rate alert: it fires when the error
// ratio over both the long and the short window exceeds BurnRate times
// the error budget. The long window makes the alert significant, the
// short one makes it stop soon after the burn does.
type Window struct {
	// Long is the window that must hold enough burn to matter.
	Long time.Duration `yaml:"long" config:"required"`
	// Short is the window that must still be burning; default Long/12,
	// the Workbook's ratio.
	Short time.Duration `yaml:"short"`
	// BurnRate is the multiple of the sustainable error rate that fires
	// the alert (14.4: the budget would last 1/14.4 of the period). Give
	// either BurnRate or Budget.
	BurnRate float64 `yaml:"burnRate"`
	// Budget is the share of the period's error budget that, spent within
	// Long, fires the alert (0.02 or "2%"); BurnRate is then
	// Budget*Period/Long.
	Budget config.Ratio `yaml:"budget"`
}
