package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/outcome"
)

// Autoscale scales a command service as a Kubernetes
// HorizontalPodAutoscaler with an average-value metric would: the run
// puts a relia gateway in front of the replicas (where the load goes
// unless target.url says otherwise), reads the gateway's request rate
// (the rate of http_server_request_duration_seconds_count over
// metricWindow, scraped every second), and at every syncPeriod decides
// the replica count by the HPA's rules (package capacity/autoscale: the
// 10% tolerance, starting replicas counted as idle on a scale-up, the
// stabilisation windows and the scaling policies). A new replica is
// started at once and joins the gateway once it answers its health check
// and startupDelay has passed since the decision; a removed one leaves the
// gateway at once and is stopped after drainTimeout. Replica i listens on
// port+i. The run writes what the autoscaler saw and did, and every
// request the gateway proxied, to scaling-<service>.json.
type Autoscale struct {
	// MinReplicas is the fewest replicas, started before the run; default
	// 1.
	MinReplicas int `yaml:"minReplicas" json:"minReplicas,omitempty"`
	// MaxReplicas is the most replicas.
	MaxReplicas int `yaml:"maxReplicas" config:"required" json:"maxReplicas,omitempty"`
	// Target is the request rate per ready replica the autoscaler aims for,
	// in requests per second: the HPA's averageValue.
	Target float64 `yaml:"target" config:"required" json:"target,omitempty"`
	// StartupDelay is how long a new replica takes to join, counted from
	// the decision: what a pod's scheduling, image pull and readiness
	// probe take in a cluster. Default 0: as soon as it is healthy.
	StartupDelay time.Duration `yaml:"startupDelay" json:"startupDelay_ns,omitempty"`
	// SyncPeriod is how often the autoscaler decides; default 15s, the
	// HPA controller's. Syncs fall on whole multiples of it.
	SyncPeriod time.Duration `yaml:"syncPeriod" json:"syncPeriod_ns,omitempty"`
	// MetricWindow is the range of the request rate; default 1m.
	MetricWindow time.Duration `yaml:"metricWindow" json:"metricWindow_ns,omitempty"`
	// Behavior replaces the HPA's default scaling behaviour.
	Behavior *ScalingBehavior `yaml:"behavior" json:"behavior,omitempty"`
	// Listen is the gateway's address; default a free loopback port.
	Listen string `yaml:"listen" json:"listen,omitempty"`
	// Balance is the gateway's balancer: least_request (default) or
	// round_robin.
	Balance string `yaml:"balance" json:"balance,omitempty"`
	// Timeout bounds a request through the gateway; default 15s.
	Timeout time.Duration `yaml:"timeout" json:"timeout_ns,omitempty"`
	// DrainTimeout is how long a removed replica keeps running to finish
	// its requests; default 5s.
	DrainTimeout time.Duration `yaml:"drainTimeout" json:"drainTimeout_ns,omitempty"`
}

// ScalingBehavior is the HPA's spec.behavior.
type ScalingBehavior struct {
	// ScaleUp bounds how fast replicas are added.
	ScaleUp *ScalingRules `yaml:"scaleUp" json:"scaleUp,omitempty"`
	// ScaleDown bounds how fast replicas are removed.
	ScaleDown *ScalingRules `yaml:"scaleDown" json:"scaleDown,omitempty"`
}

// ScalingRules are one direction's rules; a direction left out keeps
// Kubernetes' default.
type ScalingRules struct {
	// StabilizationWindow looks back over the recommendations of this
	// window: scaling up takes their lowest, scaling down their highest.
	StabilizationWindow time.Duration `yaml:"stabilizationWindow" json:"stabilizationWindow_ns,omitempty"`
	// SelectPolicy is Max (default), Min or Disabled.
	SelectPolicy string `yaml:"selectPolicy" json:"selectPolicy,omitempty"`
	// Policies bound the change per period.
	Policies []ScalingPolicy `yaml:"policies" json:"policies,omitempty"`
}

// ScalingPolicy allows a change of at most Value pods (type Pods) or
// Value percent (type Percent) within any Period.
type ScalingPolicy struct {
	// Type says what Value counts: Pods, or Percent of the current
	// replicas.
	Type string `yaml:"type" config:"required" json:"type"`
	// Value is the most pods (or percent) of change allowed per Period.
	Value int `yaml:"value" config:"required" json:"value"`
	// Period is the sliding window the change is counted over.
	Period time.Duration `yaml:"period" config:"required" json:"period_ns"`
}

// Defaults of Autoscale.
const (
	DefaultSyncPeriod   = autoscale.DefaultSyncPeriod
	DefaultMetricWindow = time.Minute
	DefaultDrainTimeout = 5 * time.Second
	DefaultScaleTimeout = 15 * time.Second
)

// HPA returns the autoscaler's rules as package autoscale takes them.
func (a *Autoscale) HPA() autoscale.HPA {
	b := autoscale.DefaultBehavior()
	if a.Behavior != nil {
		set := func(dst *autoscale.Rules, r *ScalingRules) {
			if r == nil {
				return
			}
			*dst = autoscale.Rules{Window: r.StabilizationWindow, Select: autoscale.SelectPolicy(r.SelectPolicy)}
			for _, p := range r.Policies {
				dst.Policies = append(dst.Policies, autoscale.Policy{Type: autoscale.PolicyType(p.Type), Value: int32(p.Value), Period: p.Period})
			}
		}
		set(&b.ScaleUp, a.Behavior.ScaleUp)
		set(&b.ScaleDown, a.Behavior.ScaleDown)
	}
	return autoscale.HPA{Min: int32(a.MinReplicas), Max: int32(a.MaxReplicas), Target: a.Target, SyncPeriod: a.SyncPeriod, Behavior: &b}
}

// describe is the autoscaler in the dry run's words.
func (a *Autoscale) describe() string {
	return fmt.Sprintf(", autoscaled %d-%d behind a gateway (%s) at %s req/s per replica, syncing every %s over a %s rate, replicas ready %s after the decision",
		a.MinReplicas, a.MaxReplicas, a.Balance, strconv.FormatFloat(a.Target, 'f', -1, 64), fmtDur(a.SyncPeriod), fmtDur(a.MetricWindow), fmtDur(a.StartupDelay))
}

// autoscale checks a command service's autoscale section and fills in its
// defaults.
func (r *resolver) autoscale(path string, sv *Service) {
	a := sv.Autoscale
	path += ".autoscale"
	if a.MinReplicas == 0 {
		a.MinReplicas = 1
	}
	if a.SyncPeriod == 0 {
		a.SyncPeriod = DefaultSyncPeriod
	}
	if a.MetricWindow == 0 {
		a.MetricWindow = DefaultMetricWindow
	}
	if a.DrainTimeout == 0 {
		a.DrainTimeout = DefaultDrainTimeout
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultScaleTimeout
	}
	if a.Balance == "" {
		a.Balance = "least_request"
	}
	if a.Balance != "least_request" && a.Balance != "round_robin" {
		r.bad(path+".balance", "%q: want least_request or round_robin", a.Balance)
	}
	if a.SyncPeriod < time.Second || a.SyncPeriod%time.Second != 0 {
		r.bad(path+".syncPeriod", "%s: want whole seconds, at least 1s", a.SyncPeriod)
	}
	if a.MetricWindow < time.Second {
		r.bad(path+".metricWindow", "%s: want at least 1s (the gateway is scraped every second)", a.MetricWindow)
	}
	if a.StartupDelay < 0 || a.DrainTimeout < 0 || a.Timeout < 0 {
		r.bad(path, "startupDelay, drainTimeout and timeout may not be negative")
	}
	if sv.Port > 0 && sv.Port+a.MaxReplicas-1 > 65535 {
		r.bad(path+".maxReplicas", "%d replicas from port %d pass port 65535", a.MaxReplicas, sv.Port)
	}
	if _, err := autoscale.NewController(a.HPA()); err != nil {
		r.bad(path, "%v", err)
	}
	sv.Replicas = a.MinReplicas
}

// ScalingSchema is the value of a scaling record's "schema" field.
const ScalingSchema = "relia/scaling/v1"

// ScalingFile is the name of the scaling record of an autoscaled service
// in a run's output folder.
func ScalingFile(service string) string { return "scaling-" + service + ".json" }

// ScalingRecord is what an autoscaled service's autoscaler saw and did
// during a run, and every request its gateway proxied.
type ScalingRecord struct {
	Schema  string `json:"schema"`
	Service string `json:"service"`
	// Autoscale is the service's autoscale section, defaults applied.
	Autoscale Autoscale `json:"autoscale"`
	// Start is the first second recorded.
	Start time.Time `json:"start"`
	// Seconds has one sample a second: the replicas asked for and ready,
	// and the metric at the last sync.
	Seconds []ScalingSecond `json:"seconds"`
	// Syncs are the times the autoscaler decided, Events the changes.
	Syncs  []time.Time    `json:"syncs"`
	Events []ScalingEvent `json:"events"`
	// Requests holds every request the gateway proxied, by the time it
	// arrived at the gateway.
	Requests *outcome.Recorder `json:"requests"`
}

// ScalingSecond is one second of an autoscaled service.
type ScalingSecond struct {
	At       time.Time `json:"at"`
	Replicas int       `json:"replicas"`
	Ready    int       `json:"ready"`
	Metric   float64   `json:"metric"`
}

// ScalingEvent is one change of the replica count.
type ScalingEvent struct {
	At       time.Time `json:"at"`
	From     int       `json:"from"`
	To       int       `json:"to"`
	Reason   string    `json:"reason"`
	Observed float64   `json:"observed"`
}

// DecodeScaling reads a scaling record, rejecting unknown fields and
// other schemas.
func DecodeScaling(r io.Reader) (*ScalingRecord, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the scaling record: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s ScalingRecord
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("reading the scaling record: %w", err)
	}
	if s.Schema != ScalingSchema {
		return nil, fmt.Errorf("reading the scaling record: schema %q is not %q", s.Schema, ScalingSchema)
	}
	if s.Requests == nil {
		return nil, errors.New("reading the scaling record: it has no requests")
	}
	return &s, nil
}
