package autoscale

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Kubernetes' defaults for the HorizontalPodAutoscaler, as the
// controller manager and the autoscaling/v2 API apply them.
const (
	// DefaultTolerance is the controller's --horizontal-pod-autoscaler-tolerance:
	// a usage ratio within 10% of 1 changes nothing.
	DefaultTolerance = 0.1
	// DefaultSyncPeriod is --horizontal-pod-autoscaler-sync-period: how
	// often the controller looks at the metric.
	DefaultSyncPeriod = 15 * time.Second
	// DefaultScaleDownWindow is the scale-down stabilisation window of an
	// HPA that names none (the controller's
	// --horizontal-pod-autoscaler-downscale-stabilization).
	DefaultScaleDownWindow = 5 * time.Minute
)

// PolicyType is how a scaling policy bounds a change: by a number of pods
// or by a percentage of the replicas at the start of its period.
type PolicyType string

// The policy types of autoscaling/v2.
const (
	Pods    PolicyType = "Pods"
	Percent PolicyType = "Percent"
)

// SelectPolicy picks among a direction's policies: the one that allows
// the largest change (Max, the default), the smallest (Min), or none
// (Disabled: no scaling in that direction).
type SelectPolicy string

// The select policies of autoscaling/v2.
const (
	SelectMax      SelectPolicy = "Max"
	SelectMin      SelectPolicy = "Min"
	SelectDisabled SelectPolicy = "Disabled"
)

// Policy allows at most Value pods (or Value percent) of change within
// any Period.
type Policy struct {
	Type   PolicyType
	Value  int32
	Period time.Duration
}

// Rules are one direction's behaviour: a stabilisation window over past
// recommendations and the policies that bound the rate of change.
type Rules struct {
	// Window is the stabilisation window: scaling up takes the lowest
	// recommendation of the window, scaling down the highest.
	Window time.Duration
	// Select picks among Policies; empty means SelectMax.
	Select   SelectPolicy
	Policies []Policy
}

// Behavior is an HPA's spec.behavior with every default filled in.
type Behavior struct {
	ScaleUp, ScaleDown Rules
}

// DefaultBehavior is the behaviour autoscaling/v2 gives an HPA that sets
// none: scale up at once by up to 4 pods or 100% (whichever is more)
// every 15 s; scale down after a 5-minute window by up to 100% every
// 15 s.
func DefaultBehavior() Behavior {
	return Behavior{
		ScaleUp: Rules{Window: 0, Select: SelectMax, Policies: []Policy{
			{Type: Pods, Value: 4, Period: 15 * time.Second},
			{Type: Percent, Value: 100, Period: 15 * time.Second},
		}},
		ScaleDown: Rules{Window: DefaultScaleDownWindow, Select: SelectMax, Policies: []Policy{
			{Type: Percent, Value: 100, Period: 15 * time.Second},
		}},
	}
}

// MetricKind says how the HPA reads its metric, which decides how pods
// that are not ready yet count.
type MetricKind string

const (
	// PodsMetric is a Pods (or Resource) metric with an average-value
	// target: each ready pod reports its own value. On a scale-up, pods
	// that are not ready yet count as reporting zero, so the HPA does not
	// add replicas for load that the starting ones will take.
	PodsMetric MetricKind = "Pods"
	// ExternalMetric is an External metric with an average-value target,
	// as KEDA's ScaledObjects create: the metric's total divided by the
	// current replica count, ready or not.
	ExternalMetric MetricKind = "External"
)

// HPA is what a HorizontalPodAutoscaler with one average-value metric
// decides from.
type HPA struct {
	// Min and Max bound the replicas.
	Min, Max int32
	// Target is the metric's target average value per pod (requests per
	// second per pod, say).
	Target float64
	// Metric is PodsMetric (default) or ExternalMetric.
	Metric MetricKind
	// Tolerance is how far from 1 the usage ratio must be for the HPA to
	// act; 0 means DefaultTolerance.
	Tolerance float64
	// SyncPeriod is how often the controller decides; 0 means
	// DefaultSyncPeriod.
	SyncPeriod time.Duration
	// Behavior is the scaling behaviour; the zero value means
	// DefaultBehavior.
	Behavior *Behavior
}

// withDefaults returns h with defaults filled in, or an error saying what
// is impossible.
func (h HPA) withDefaults() (HPA, error) {
	if h.Tolerance == 0 {
		h.Tolerance = DefaultTolerance
	}
	if h.SyncPeriod == 0 {
		h.SyncPeriod = DefaultSyncPeriod
	}
	if h.Metric == "" {
		h.Metric = PodsMetric
	}
	if h.Behavior == nil {
		b := DefaultBehavior()
		h.Behavior = &b
	}
	var errs []error
	switch {
	case h.Min < 1:
		errs = append(errs, fmt.Errorf("minReplicas %d: want at least 1", h.Min))
	case h.Max < h.Min:
		errs = append(errs, fmt.Errorf("maxReplicas %d is below minReplicas %d", h.Max, h.Min))
	}
	if !(h.Target > 0) || math.IsInf(h.Target, 0) {
		errs = append(errs, fmt.Errorf("target %v: want a positive average value per pod", h.Target))
	}
	if h.Tolerance < 0 || h.Tolerance >= 1 {
		errs = append(errs, fmt.Errorf("tolerance %v: want a share in [0, 1)", h.Tolerance))
	}
	if h.SyncPeriod < 0 {
		errs = append(errs, fmt.Errorf("sync period %s is negative", h.SyncPeriod))
	}
	if h.Metric != PodsMetric && h.Metric != ExternalMetric {
		errs = append(errs, fmt.Errorf("metric kind %q: want Pods or External", h.Metric))
	}
	for dir, r := range map[string]Rules{"scaleUp": h.Behavior.ScaleUp, "scaleDown": h.Behavior.ScaleDown} {
		if r.Window < 0 || r.Window > time.Hour {
			errs = append(errs, fmt.Errorf("%s stabilization window %s: want 0 to 1h", dir, r.Window))
		}
		switch r.Select {
		case "", SelectMax, SelectMin, SelectDisabled:
		default:
			errs = append(errs, fmt.Errorf("%s selectPolicy %q: want Max, Min or Disabled", dir, r.Select))
		}
		if len(r.Policies) == 0 && r.Select != SelectDisabled {
			errs = append(errs, fmt.Errorf("%s has no policy", dir))
		}
		for i, p := range r.Policies {
			if p.Type != Pods && p.Type != Percent {
				errs = append(errs, fmt.Errorf("%s policies[%d]: type %q: want Pods or Percent", dir, i, p.Type))
			}
			if p.Value <= 0 {
				errs = append(errs, fmt.Errorf("%s policies[%d]: value %d: want at least 1", dir, i, p.Value))
			}
			if p.Period <= 0 || p.Period > 30*time.Minute {
				errs = append(errs, fmt.Errorf("%s policies[%d]: period %s: want 1s to 30m", dir, i, p.Period))
			}
		}
	}
	return h, errors.Join(errs...)
}

// Observation is what the controller sees at one sync.
type Observation struct {
	// Now is the time of the sync.
	Now time.Time
	// Current is the replica count the workload asks for now (its
	// spec.replicas), starting pods included.
	Current int32
	// Ready is how many of them are ready and report the metric; the
	// others are starting.
	Ready int32
	// Value is the metric's sum: over the ready pods for PodsMetric, the
	// external metric's total for ExternalMetric.
	Value float64
}

// Decision is what one sync decided.
type Decision struct {
	// Raw is the replica count the metric asks for (the replica
	// calculator's answer), before stabilisation, policies and bounds.
	Raw int32
	// Desired is the replica count the controller sets.
	Desired int32
	// Reason says which rule gave Desired: "within tolerance", "metric",
	// "stabilized", "scale-up limit", "scale-down limit", "max", "min".
	Reason string
}

// Controller is one HorizontalPodAutoscaler's state between syncs: the
// recommendations of the stabilisation windows and the scaling events the
// policies count. It is a pure state machine driven by Decide, so a
// simulation and a live run make the same decisions for the same
// observations.
type Controller struct {
	hpa             HPA
	recommendations []stamped
	upEvents        []stamped
	downEvents      []stamped
}

// stamped is a replica count (a recommendation or a change) at a time.
type stamped struct {
	at time.Time
	n  int32
}

// NewController returns a controller for h, or an error saying what in h
// is impossible.
func NewController(h HPA) (*Controller, error) {
	h, err := h.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Controller{hpa: h}, nil
}

// Spec returns the controller's HPA with defaults filled in.
func (c *Controller) Spec() HPA { return c.hpa }

// SetMin changes minReplicas (within 1 and maxReplicas), as a patch of
// the HPA would: a scheduled pre-scale ahead of a known peak.
func (c *Controller) SetMin(n int32) { c.hpa.Min = min(max(n, 1), c.hpa.Max) }

// Decide runs one sync of the controller as Kubernetes' does: the
// replica calculator turns the observation into a raw recommendation;
// below Min or above Max the count is brought within bounds at once;
// otherwise the stabilisation windows and the scaling policies of the
// behaviour bound it. A change is remembered for the policies' periods.
// Calls must come in time order.
func (c *Controller) Decide(o Observation) Decision {
	h := c.hpa
	var d Decision
	switch {
	case o.Current == 0:
		// Kubernetes does not scale a workload at zero: KEDA (or a
		// person) must bring it to one first.
		return Decision{Raw: 0, Desired: 0, Reason: "scaled to zero"}
	case o.Current > h.Max:
		d = Decision{Raw: h.Max, Desired: h.Max, Reason: "max"}
	case o.Current < h.Min:
		d = Decision{Raw: h.Min, Desired: h.Min, Reason: "min"}
	default:
		raw, within := c.replicas(o)
		d = Decision{Raw: raw, Desired: raw, Reason: "metric"}
		if within {
			d.Reason = "within tolerance"
		}
		d.Desired, d.Reason = c.normalize(o.Now, o.Current, raw, d.Reason)
	}
	c.record(o.Now, o.Current, d.Desired)
	return d
}

// replicas is the replica calculator for an average-value metric; within
// is true when the usage ratio was within tolerance and the count kept.
func (c *Controller) replicas(o Observation) (n int32, within bool) {
	h := c.hpa
	if h.Metric == ExternalMetric {
		// GetExternalPerPodMetricReplicas: the total over the current
		// replicas, ready or not.
		ratio := o.Value / (h.Target * float64(o.Current))
		if math.Abs(1-ratio) <= h.Tolerance {
			return o.Current, true
		}
		return int32(math.Ceil(o.Value / h.Target)), false
	}
	ready := min(o.Ready, o.Current)
	unready := o.Current - ready
	if ready == 0 {
		// No pod reports yet: nothing to go on (the controller would
		// report the metric as unavailable and keep the count).
		return o.Current, true
	}
	ratio := o.Value / (h.Target * float64(ready))
	if unready == 0 || ratio <= 1 {
		if math.Abs(1-ratio) <= h.Tolerance {
			return o.Current, true
		}
		return int32(math.Ceil(ratio * float64(ready))), false
	}
	// A scale-up with pods still starting: they count as reporting zero,
	// and the new ratio must still call for a scale-up.
	newRatio := o.Value / (h.Target * float64(o.Current))
	if math.Abs(1-newRatio) <= h.Tolerance || newRatio < 1 {
		return o.Current, true
	}
	n = int32(math.Ceil(newRatio * float64(o.Current)))
	if n < o.Current {
		return o.Current, true
	}
	return n, false
}

// normalize applies the stabilisation windows and the scaling policies to
// a raw recommendation (normalizeDesiredReplicasWithBehaviors).
func (c *Controller) normalize(now time.Time, current, raw int32, reason string) (int32, string) {
	h := c.hpa
	b := h.Behavior
	// Stabilise: scaling up takes the lowest recommendation of the
	// scale-up window (this one included), scaling down the highest of
	// the scale-down window.
	up, down := raw, raw
	upCut, downCut := now.Add(-b.ScaleUp.Window), now.Add(-b.ScaleDown.Window)
	for _, r := range c.recommendations {
		if r.at.After(upCut) {
			up = min(up, r.n)
		}
		if r.at.After(downCut) {
			down = max(down, r.n)
		}
	}
	c.remember(now, raw)
	stable := max(current, up)
	stable = min(stable, down)
	if stable != raw {
		reason = "stabilized"
	}
	switch {
	case stable > current:
		limit := c.upLimit(now, current)
		maxAllowed, why := h.Max, "max"
		if limit < maxAllowed {
			maxAllowed, why = limit, "scale-up limit"
		}
		if stable > maxAllowed {
			return maxAllowed, why
		}
	case stable < current:
		limit := c.downLimit(now, current)
		minAllowed, why := h.Min, "min"
		if limit > minAllowed {
			minAllowed, why = limit, "scale-down limit"
		}
		if stable < minAllowed {
			return minAllowed, why
		}
	}
	return stable, reason
}

// remember keeps a raw recommendation for the windows, dropping those
// older than both.
func (c *Controller) remember(now time.Time, n int32) {
	b := c.hpa.Behavior
	keep := max(b.ScaleUp.Window, b.ScaleDown.Window)
	kept := c.recommendations[:0]
	for _, r := range c.recommendations {
		if r.at.After(now.Add(-keep)) {
			kept = append(kept, r)
		}
	}
	c.recommendations = append(kept, stamped{now, n})
}

// upLimit is the most replicas the scale-up policies allow now
// (calculateScaleUpLimitWithScalingRules); never below current.
func (c *Controller) upLimit(now time.Time, current int32) int32 {
	return max(c.limit(c.hpa.Behavior.ScaleUp, now, current, 1), current)
}

// downLimit is the fewest replicas the scale-down policies allow now
// (calculateScaleDownLimitWithBehaviors); never above current.
func (c *Controller) downLimit(now time.Time, current int32) int32 {
	return min(c.limit(c.hpa.Behavior.ScaleDown, now, current, -1), current)
}

// limit is the replica count a direction's policies allow (sign 1 up, -1
// down): each policy proposes a change from the count at the start of
// its period, and Max takes the largest change, Min the smallest.
func (c *Controller) limit(r Rules, now time.Time, current int32, sign int32) int32 {
	if r.Select == SelectDisabled {
		return current
	}
	var result int32
	for i, p := range r.Policies {
		start := current - changed(c.upEvents, now, p.Period) + changed(c.downEvents, now, p.Period)
		var proposed int32
		switch {
		case p.Type == Pods:
			proposed = start + sign*p.Value
		case sign > 0:
			// rounded up, or a small workload could never grow
			proposed = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		default:
			proposed = int32(float64(start) * (1 - float64(p.Value)/100))
		}
		larger := sign*proposed > sign*result // a larger change
		if i == 0 || larger == (r.Select != SelectMin) {
			result = proposed
		}
	}
	return result
}

// changed sums the replica changes of events within period before now.
func changed(events []stamped, now time.Time, period time.Duration) int32 {
	var n int32
	cut := now.Add(-period)
	for _, e := range events {
		if e.at.After(cut) {
			n += e.n
		}
	}
	return n
}

// record keeps a scale event for the policies, dropping events older than
// the longest policy period.
func (c *Controller) record(now time.Time, from, to int32) {
	if from == to {
		return
	}
	b := c.hpa.Behavior
	var longest time.Duration
	for _, p := range append(append([]Policy(nil), b.ScaleUp.Policies...), b.ScaleDown.Policies...) {
		longest = max(longest, p.Period)
	}
	prune := func(es []stamped) []stamped {
		kept := es[:0]
		for _, e := range es {
			if e.at.After(now.Add(-longest)) {
				kept = append(kept, e)
			}
		}
		return kept
	}
	if to > from {
		c.upEvents = append(prune(c.upEvents), stamped{now, to - from})
	} else {
		c.downEvents = append(prune(c.downEvents), stamped{now, from - to})
	}
}
