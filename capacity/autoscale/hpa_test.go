package autoscale

import (
	"testing"
	"time"
)

var t0 = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

// at is t0 plus seconds.
func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// sync is one observation and the decision worked out by hand from
// Kubernetes' replica calculator and behaviour rules.
type sync struct {
	obs  Observation
	want int32
	why  string
}

func TestControllerDecisions(t *testing.T) {
	t.Parallel()
	downOnePer60 := Behavior{
		ScaleUp:   DefaultBehavior().ScaleUp,
		ScaleDown: Rules{Select: SelectMax, Policies: []Policy{{Type: Pods, Value: 1, Period: 60 * time.Second}}},
	}
	upMin := Behavior{
		ScaleUp:   Rules{Select: SelectMin, Policies: []Policy{{Type: Pods, Value: 4, Period: 15 * time.Second}, {Type: Percent, Value: 100, Period: 15 * time.Second}}},
		ScaleDown: DefaultBehavior().ScaleDown,
	}
	noDown := Behavior{ScaleUp: DefaultBehavior().ScaleUp, ScaleDown: Rules{Select: SelectDisabled}}
	cases := []struct {
		name  string
		hpa   HPA
		syncs []sync
	}{
		{"ratio 1.5 adds a replica", HPA{Min: 1, Max: 20, Target: 100}, []sync{
			// 300/(100*2) = 1.5; ceil(1.5*2) = 3; the limit is max(2+4, 2*2) = 6.
			{Observation{Now: at(0), Current: 2, Ready: 2, Value: 300}, 3, "metric"},
		}},
		{"within the 10% tolerance nothing changes", HPA{Min: 1, Max: 20, Target: 100}, []sync{
			// 430/(100*4) = 1.075, within 1 +- 0.1.
			{Observation{Now: at(0), Current: 4, Ready: 4, Value: 430}, 4, "within tolerance"},
			// 460/(100*4) = 1.15: ceil(4.6) = 5.
			{Observation{Now: at(15), Current: 4, Ready: 4, Value: 460}, 5, "metric"},
		}},
		{"default scale-up policies: 4 pods or 100% per 15s", HPA{Min: 1, Max: 50, Target: 100}, []sync{
			// 2000/200 = 10: raw 20, limit max(2+4, ceil(2*2)) = 6.
			{Observation{Now: at(0), Current: 2, Ready: 2, Value: 2000}, 6, "scale-up limit"},
			// 4 pods still start and count as 0: 2000/(100*6) = 3.33, raw
			// ceil(3.33*6) = 20; the +4 of 5s ago leaves the period starting
			// at 2: limit max(6, 4) = 6.
			{Observation{Now: at(5), Current: 6, Ready: 2, Value: 2000}, 6, "scale-up limit"},
			// 16s later the event is out of the period: limit max(6+4, 12) = 12.
			{Observation{Now: at(16), Current: 6, Ready: 6, Value: 2000}, 12, "scale-up limit"},
		}},
		{"scale-down waits out the 5-minute window", HPA{Min: 1, Max: 20, Target: 100}, []sync{
			{Observation{Now: at(0), Current: 10, Ready: 10, Value: 1000}, 10, "within tolerance"},
			// raw 2, but the window holds 10.
			{Observation{Now: at(60), Current: 10, Ready: 10, Value: 200}, 10, "stabilized"},
			// at 301s the recommendation of 0s has left the window; the
			// highest left is 2 (60s); 100% per 15s allows it.
			{Observation{Now: at(301), Current: 10, Ready: 10, Value: 200}, 2, "metric"},
		}},
		{"scale-down one pod per minute", HPA{Min: 1, Max: 20, Target: 100, Behavior: &downOnePer60}, []sync{
			{Observation{Now: at(0), Current: 5, Ready: 5, Value: 200}, 4, "scale-down limit"},
			// the -1 of 30s ago is in the period: it starts at 5, so 5-1 = 4.
			{Observation{Now: at(30), Current: 4, Ready: 4, Value: 200}, 4, "scale-down limit"},
			{Observation{Now: at(61), Current: 4, Ready: 4, Value: 200}, 3, "scale-down limit"},
		}},
		{"selectPolicy Min takes the smaller scale-up", HPA{Min: 1, Max: 100, Target: 100, Behavior: &upMin}, []sync{
			// raw 40; min(10+4, 20) = 14.
			{Observation{Now: at(0), Current: 10, Ready: 10, Value: 4000}, 14, "scale-up limit"},
		}},
		{"scale-down disabled", HPA{Min: 1, Max: 20, Target: 100, Behavior: &noDown}, []sync{
			{Observation{Now: at(0), Current: 5, Ready: 5, Value: 100}, 5, "scale-down limit"},
		}},
		{"maxReplicas bounds the scale-up", HPA{Min: 1, Max: 5, Target: 100}, []sync{
			{Observation{Now: at(0), Current: 4, Ready: 4, Value: 4000}, 5, "max"},
		}},
		{"outside the bounds the count is brought back at once", HPA{Min: 3, Max: 5, Target: 100}, []sync{
			{Observation{Now: at(0), Current: 8, Ready: 8, Value: 0}, 5, "max"},
			{Observation{Now: at(1), Current: 1, Ready: 1, Value: 10000}, 3, "min"},
		}},
		{"minReplicas bounds the scale-down", HPA{Min: 3, Max: 10, Target: 100, Behavior: &Behavior{ScaleUp: DefaultBehavior().ScaleUp, ScaleDown: Rules{Policies: []Policy{{Type: Percent, Value: 100, Period: 15 * time.Second}}}}}, []sync{
			{Observation{Now: at(0), Current: 6, Ready: 6, Value: 10}, 3, "min"},
		}},
		{"starting pods that would turn a scale-up into none keep the count", HPA{Min: 1, Max: 20, Target: 100}, []sync{
			// ready ratio 250/(100*2) = 1.25 asks for more, but with the 2
			// starting pods at 0 it is 250/400 = 0.625: keep 4.
			{Observation{Now: at(0), Current: 4, Ready: 2, Value: 250}, 4, "within tolerance"},
		}},
		{"an external metric divides by every replica, ready or not", HPA{Min: 1, Max: 20, Target: 100, Metric: ExternalMetric}, []sync{
			// 1000/(100*4) = 2.5: ceil(1000/100) = 10; limit max(8, 8) = 8.
			{Observation{Now: at(0), Current: 4, Ready: 1, Value: 1000}, 8, "scale-up limit"},
			// 1000/(100*8) = 1.25: ceil(1000/100) = 10. The +4 of 15s ago
			// sits exactly on the period's cut-off and no longer counts.
			{Observation{Now: at(15), Current: 8, Ready: 8, Value: 1000}, 10, "metric"},
		}},
		{"a workload at zero is left to KEDA", HPA{Min: 1, Max: 20, Target: 100}, []sync{
			{Observation{Now: at(0), Current: 0, Ready: 0, Value: 500}, 0, "scaled to zero"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewController(tc.hpa)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.syncs {
				d := c.Decide(s.obs)
				if d.Desired != s.want || d.Reason != s.why {
					t.Errorf("sync %d at %s: got %d (%s, raw %d), want %d (%s)", i, s.obs.Now.Sub(t0), d.Desired, d.Reason, d.Raw, s.want, s.why)
				}
			}
		})
	}
}

func TestControllerRejectsImpossibleSpecs(t *testing.T) {
	t.Parallel()
	for _, h := range []HPA{
		{Min: 0, Max: 5, Target: 1},
		{Min: 3, Max: 2, Target: 1},
		{Min: 1, Max: 2, Target: 0},
		{Min: 1, Max: 2, Target: 1, Tolerance: 1.5},
		{Min: 1, Max: 2, Target: 1, Behavior: &Behavior{ScaleUp: Rules{Policies: []Policy{{Type: "Bogus", Value: 1, Period: time.Second}}}, ScaleDown: Rules{Select: SelectDisabled}}},
		{Min: 1, Max: 2, Target: 1, Behavior: &Behavior{ScaleUp: Rules{Policies: []Policy{{Type: Pods, Value: 0, Period: time.Second}}}, ScaleDown: Rules{Select: SelectDisabled}}},
	} {
		if _, err := NewController(h); err == nil {
			t.Errorf("%+v: want an error", h)
		}
	}
}

func TestScalerActivationAndCooldown(t *testing.T) {
	t.Parallel()
	s, err := NewScaler(KEDA{MinReplicas: 0, MaxReplicas: 10, Threshold: 100, Activation: 5, CooldownPeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		at      int
		value   float64
		current int32
		want    int32
	}{
		{0, 3, 0, 0},     // below the activation: stays at zero
		{30, 6, 0, 1},    // active: KEDA brings it to one
		{60, 0, 1, 1},    // inactive, but active 30s ago: the cooldown runs
		{90, 0, 1, 1},    // exactly 60s after: not yet past it
		{120, 0, 1, 0},   // 90s without activity: to zero
		{150, 500, 0, 1}, // KEDA only brings it to one; the HPA does the rest
	}
	for _, st := range steps {
		if got := s.Poll(at(st.at), st.value, st.current); got != st.want {
			t.Errorf("poll at %ds (value %v, current %d): got %d, want %d", st.at, st.value, st.current, got, st.want)
		}
	}
	if h := s.HPA().Spec(); h.Min != 1 || h.Metric != ExternalMetric || h.Target != 100 {
		t.Errorf("the HPA KEDA creates: %+v", h)
	}
	fresh, _ := NewScaler(KEDA{MinReplicas: 0, MaxReplicas: 10, Threshold: 100})
	if got := fresh.Poll(at(0), 0, 3); got != 0 {
		t.Errorf("a workload KEDA never saw active: got %d, want scaled to zero at once", got)
	}
	floor, _ := NewScaler(KEDA{MinReplicas: 2, MaxReplicas: 10, Threshold: 100})
	if got := floor.Poll(at(0), 50, 0); got != 2 {
		t.Errorf("activation with minReplicaCount 2: got %d", got)
	}
	if got := floor.Poll(at(999), 0, 2); got != 2 {
		t.Errorf("minReplicaCount 2 never scales to zero: got %d", got)
	}
}
