package autoscale

import (
	"errors"
	"fmt"
	"time"
)

// KEDA's defaults for a ScaledObject.
const (
	// DefaultPollingInterval is how often KEDA checks its triggers.
	DefaultPollingInterval = 30 * time.Second
	// DefaultCooldownPeriod is how long every trigger must have been
	// inactive before KEDA scales the workload to zero.
	DefaultCooldownPeriod = 5 * time.Minute
)

// KEDA is a ScaledObject with one average-value trigger: KEDA itself
// moves the workload between zero and one replica by the trigger's
// activation, and the HPA it creates (an External metric, target
// Threshold per pod) does the rest.
type KEDA struct {
	// MinReplicas and MaxReplicas are minReplicaCount and
	// maxReplicaCount; MinReplicas 0 lets the workload scale to zero.
	MinReplicas, MaxReplicas int32
	// Threshold is the trigger's target value per replica.
	Threshold float64
	// Activation is the trigger's activationThreshold: the trigger is
	// active while the metric is above it.
	Activation float64
	// PollingInterval is how often KEDA checks the trigger; 0 means
	// DefaultPollingInterval.
	PollingInterval time.Duration
	// CooldownPeriod is how long the trigger must have been inactive
	// before KEDA scales to zero; 0 means DefaultCooldownPeriod.
	CooldownPeriod time.Duration
	// HPA configures the HPA KEDA creates: its tolerance, sync period and
	// behaviour (advanced.horizontalPodAutoscalerConfig). Min, Max,
	// Target and Metric are set from the fields above.
	HPA HPA
}

// Scaler is a ScaledObject's state: KEDA's activation loop and the HPA it
// created. Like Controller it is a pure state machine: Poll and Sync take
// the time and the observation, and return the replica count to set.
type Scaler struct {
	keda       KEDA
	hpa        *Controller
	lastActive time.Time // zero until the trigger was first active
}

// NewScaler returns the scaler of k, or an error saying what in k is
// impossible.
func NewScaler(k KEDA) (*Scaler, error) {
	if k.PollingInterval == 0 {
		k.PollingInterval = DefaultPollingInterval
	}
	if k.CooldownPeriod == 0 {
		k.CooldownPeriod = DefaultCooldownPeriod
	}
	var errs []error
	if k.MinReplicas < 0 {
		errs = append(errs, fmt.Errorf("minReplicaCount %d is negative", k.MinReplicas))
	}
	if k.PollingInterval < 0 || k.CooldownPeriod < 0 {
		errs = append(errs, errors.New("pollingInterval and cooldownPeriod may not be negative"))
	}
	if k.Activation < 0 {
		errs = append(errs, fmt.Errorf("activationThreshold %v is negative", k.Activation))
	}
	h := k.HPA
	h.Min, h.Max, h.Target, h.Metric = max(k.MinReplicas, 1), k.MaxReplicas, k.Threshold, ExternalMetric
	hpa, err := NewController(h)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Scaler{keda: k, hpa: hpa}, nil
}

// Spec returns the ScaledObject with defaults filled in.
func (s *Scaler) Spec() KEDA { return s.keda }

// HPA returns the controller of the HPA KEDA created.
func (s *Scaler) HPA() *Controller { return s.hpa }

// Poll runs one of KEDA's polls at now, with the trigger's metric value
// and the current replica count, and returns the count KEDA sets: one
// (or MinReplicas) when the trigger becomes active at zero, zero once
// it has been inactive for longer than the cooldown with MinReplicas 0,
// otherwise current.
func (s *Scaler) Poll(now time.Time, value float64, current int32) int32 {
	active := value > s.keda.Activation
	if active {
		s.lastActive = now
	}
	switch {
	case current == 0 && active:
		return max(s.keda.MinReplicas, 1)
	case current > 0 && !active && s.keda.MinReplicas == 0:
		// A workload KEDA never saw active has no cooldown to wait for
		// (its status has no lastActiveTime).
		if s.lastActive.IsZero() || s.lastActive.Add(s.keda.CooldownPeriod).Before(now) {
			return 0
		}
	}
	return current
}
