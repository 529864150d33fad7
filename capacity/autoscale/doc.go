// Package autoscale is the Kubernetes autoscalers' decision logic as pure
// state machines: the HorizontalPodAutoscaler controller (its replica
// calculator with the 10% tolerance and the rule for pods that are not
// ready yet, the scale-up and scale-down stabilisation windows, the
// scaling policies with their periods and selectPolicy, and the defaults
// of autoscaling/v2), and KEDA's activation and cooldown around the HPA
// it creates.
//
// Nothing here reads a clock: every call takes the time of the sync, so
// relia's simulation (capacity.Simulate) and a live run that scales real
// processes (relia run with an autoscaled service) make the same
// decisions for the same observations, and tests check them against
// decisions computed by hand.
//
//	c, _ := autoscale.NewController(autoscale.HPA{Min: 2, Max: 20, Target: 100})
//	d := c.Decide(autoscale.Observation{Now: t, Current: 2, Ready: 2, Value: 300})
//	// d.Desired == 3: 150 req/s per pod against 100 is a ratio of 1.5
package autoscale
