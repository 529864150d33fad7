package capacity

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/slo"
)

// Defaults of a simulation.
const (
	// DefaultStep is the simulation's time step.
	DefaultStep = 100 * time.Millisecond
	// DefaultMetricWindow is the range of the rate() the autoscaler's
	// metric is read over.
	DefaultMetricWindow = time.Minute
	// DefaultTimeout is how long a request may wait before it fails.
	DefaultTimeout = 15 * time.Second
)

// Replica is the model of one replica of the service.
type Replica struct {
	// Model gives the replica's throughput at each concurrency.
	Model USL `json:"model"`
	// Limit is the most requests a replica works on at once; more wait in
	// a queue (a worker pool, a connection limit) and throughput stays at
	// X(Limit). 0 means the model's peak concurrency (for a model without
	// a peak, requests never queue).
	Limit float64 `json:"limit"`
	// StartupDelay is how long a new replica takes to become ready: pod
	// scheduling, image pull, start-up and the readiness probe.
	StartupDelay time.Duration `json:"startup_delay_ns"`
	// Timeout is how long a request may wait for an answer before it
	// fails; 0 means DefaultTimeout.
	Timeout time.Duration `json:"timeout_ns"`
}

// limit returns the admitted concurrency with the default filled in.
func (r Replica) limit() float64 {
	if r.Limit > 0 {
		return r.Limit
	}
	n, _ := r.Model.Peak()
	return n
}

// Capacity is the most requests per second one replica serves.
func (r Replica) Capacity() float64 {
	l := r.limit()
	if math.IsInf(l, 1) {
		_, x := r.Model.Peak()
		return x
	}
	return r.throughput(l)
}

// throughput is the replica's rate of completions with n requests in it.
func (r Replica) throughput(n float64) float64 {
	n = min(n, r.limit())
	if n < 1 {
		return r.Model.Lambda * n
	}
	return r.Model.Throughput(n)
}

// latency is how long a request that finds n others in the replica takes.
func (r Replica) latency(n float64) time.Duration {
	n++
	x := r.throughput(n)
	if x <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(n / x * float64(time.Second))
}

// Scaling is the autoscaler of a simulation: an HPA, or a KEDA
// ScaledObject (whose HPA it creates), on the service's request rate.
type Scaling struct {
	// HPA is a HorizontalPodAutoscaler on requests per second per pod.
	HPA *autoscale.HPA `json:"hpa,omitempty"`
	// KEDA is a ScaledObject with a Prometheus trigger on the request rate.
	KEDA *autoscale.KEDA `json:"keda,omitempty"`
	// MetricWindow is the range of the rate() the metric is read over (the
	// gateway's completed requests); 0 means DefaultMetricWindow.
	MetricWindow time.Duration `json:"metric_window_ns"`
	// Initial is the replica count at the start; 0 means the minimum.
	Initial int32 `json:"initial"`
	// Prescale, when set, raises the minimum to Replicas at From, as a
	// scheduled change of minReplicas (or KEDA's cron trigger) would.
	Prescale *Prescale `json:"prescale,omitempty"`
	// Balance is how requests are spread over the ready replicas:
	// BalanceLeastRequest (the default: each goes to the replica with
	// the fewest in flight, as the relia gateway's least_request and
	// Kubernetes' kube-proxy in IPVS lc mode do) or BalanceRoundRobin
	// (an equal share each, however busy).
	Balance string `json:"balance,omitempty"`
	// SyncOffset is when the autoscaler's first sync falls after the
	// start; later ones follow at its period (and KEDA's polls at
	// theirs).
	SyncOffset time.Duration `json:"sync_offset_ns,omitempty"`
}

// The balancing of a simulation.
const (
	BalanceLeastRequest = "least_request"
	BalanceRoundRobin   = "round_robin"
)

// Prescale is a scheduled raise of the minimum replica count.
type Prescale struct {
	From     time.Duration `json:"from_ns"`
	Replicas int32         `json:"replicas"`
}

// Scenario is what Simulate replays: a traffic curve against replicas of
// one model under an autoscaler, judged by SLOs.
type Scenario struct {
	Traffic Traffic
	Replica Replica
	Scaling Scaling
	// SLOs judge every second: availability SLOs count requests that
	// failed (no ready replica, or a timeout) as bad; latency SLOs count
	// those slower than their threshold.
	SLOs []*slo.SLO
	// Step is the time step; 0 means DefaultStep.
	Step time.Duration
	// Duration is how long to simulate; 0 means to the curve's end.
	Duration time.Duration
}

// Second is one simulated second.
type Second struct {
	At time.Duration `json:"at_ns"`
	// Offered, Served and Failed are requests per second arriving,
	// completed and failed.
	Offered float64 `json:"offered_rps"`
	Served  float64 `json:"served_rps"`
	Failed  float64 `json:"failed_rps"`
	// Replicas is the count the autoscaler asks for at the end of the
	// second, Ready how many of them serve.
	Replicas int32 `json:"replicas"`
	Ready    int32 `json:"ready"`
	// Utilisation is Served over what the ready replicas can serve.
	Utilisation float64 `json:"utilisation"`
	// Latency is the mean predicted latency of the second's requests that
	// were answered, MaxLatency the highest.
	Latency    time.Duration `json:"latency_ns"`
	MaxLatency time.Duration `json:"max_latency_ns"`
	// Metric is the value the autoscaler read at its last sync (requests
	// per second, the sum over the ready replicas).
	Metric float64 `json:"metric"`
	// SLIs are each SLO's SLI over the second, by SLO id; Breached lists
	// the SLOs it missed.
	SLIs     map[string]float64 `json:"slis"`
	Breached []string           `json:"breached,omitempty"`
}

// Breach is a span of consecutive seconds in which an SLO missed its
// objective.
type Breach struct {
	SLO  string        `json:"slo"`
	From time.Duration `json:"from_ns"`
	To   time.Duration `json:"to_ns"`
}

// ScaleEvent is one change of the replica count.
type ScaleEvent struct {
	At       time.Duration `json:"at_ns"`
	From     int32         `json:"from"`
	To       int32         `json:"to"`
	Reason   string        `json:"reason"`
	Observed float64       `json:"observed"`
}

// Simulation is what Simulate predicts.
type Simulation struct {
	Seconds []Second     `json:"seconds"`
	Events  []ScaleEvent `json:"events"`
	// Breaches are the SLO breaches; BreachTime sums their lengths per
	// SLO.
	Breaches   []Breach                 `json:"breaches"`
	BreachTime map[string]time.Duration `json:"breach_time_ns"`
	// PeakReplicas is the most replicas asked for.
	PeakReplicas int32 `json:"peak_replicas"`
}

// Breached reports whether any SLO was missed in any second.
func (s *Simulation) Breached() bool { return len(s.Breaches) > 0 }

// TotalBreach is the number of seconds in which any SLO was missed.
func (s *Simulation) TotalBreach() time.Duration {
	return breachedSeconds(s.Seconds, func(sec Second) []string { return sec.Breached })
}

// breachedSeconds counts the seconds in which any SLO was missed.
func breachedSeconds[T any](secs []T, breached func(T) []string) time.Duration {
	var n time.Duration
	for _, s := range secs {
		if len(breached(s)) > 0 {
			n += time.Second
		}
	}
	return n
}

// pod is one simulated replica.
type pod struct {
	readyAt     time.Duration
	n           float64 // requests in it
	terminating bool
}

// sloJudge is how one SLO counts the simulation's requests.
type sloJudge struct {
	id        string
	objective float64
	latency   time.Duration // 0 for availability
}

// judges resolves the SLOs the simulation can judge.
func judges(slos []*slo.SLO) ([]sloJudge, error) {
	var js []sloJudge
	for _, s := range slos {
		j := sloJudge{id: s.ID(), objective: float64(s.Spec.Objective)}
		switch {
		case s.Spec.SLI.Latency != nil:
			j.latency = s.Spec.SLI.Latency.Threshold
		case s.Spec.SLI.Availability != nil:
		default:
			return nil, fmt.Errorf("SLO %s: its SLI is neither availability nor latency", s.ID())
		}
		js = append(js, j)
	}
	return js, nil
}

// Simulate replays the traffic curve against the replicas and the
// autoscaler, step by step, as a fluid model: each ready replica takes
// an equal share of the arrivals (round robin), serves up to its Limit
// requests at once at the model's throughput and queues the rest; a
// request's latency is the time to get through the requests ahead of it
// (Little's law on the replica); a request fails when no replica is ready
// or when its latency would pass the timeout. The autoscaler reads the
// rate of completed requests over its metric window, as a rate() over
// the gateway's request counter would, and acts at its sync period (the
// HPA) and polling interval (KEDA) by the rules of package autoscale. A
// new replica serves after its start-up delay; a removed one takes no
// new requests and finishes those it holds.
//
// It is a pure function of the scenario: the same scenario gives the
// same simulation.
func Simulate(sc Scenario) (*Simulation, error) {
	if err := sc.Traffic.Validate(); err != nil {
		return nil, fmt.Errorf("simulating: %w", err)
	}
	if sc.Replica.Model.Lambda <= 0 {
		return nil, errors.New("simulating: the replica's model has no throughput (λ <= 0)")
	}
	if sc.Replica.StartupDelay < 0 || sc.Replica.Timeout < 0 || sc.Step < 0 || sc.Scaling.MetricWindow < 0 {
		return nil, errors.New("simulating: durations may not be negative")
	}
	if b := sc.Scaling.Balance; b != "" && b != BalanceLeastRequest && b != BalanceRoundRobin {
		return nil, fmt.Errorf("simulating: balance %q: want %s or %s", b, BalanceLeastRequest, BalanceRoundRobin)
	}
	if sc.Scaling.SyncOffset < 0 {
		return nil, errors.New("simulating: the sync offset may not be negative")
	}
	if (sc.Scaling.HPA == nil) == (sc.Scaling.KEDA == nil) {
		return nil, errors.New("simulating: give an HPA or a KEDA ScaledObject")
	}
	js, err := judges(sc.SLOs)
	if err != nil {
		return nil, fmt.Errorf("simulating: %w", err)
	}
	s, err := newSim(sc)
	if err != nil {
		return nil, fmt.Errorf("simulating: %w", err)
	}
	s.judges = js
	return s.run(), nil
}

// sim is one simulation's state.
type sim struct {
	sc      Scenario
	step    time.Duration
	window  time.Duration
	timeout time.Duration
	judges  []sloJudge

	hpa      *autoscale.Controller
	keda     *autoscale.Scaler
	sync     time.Duration // the HPA's sync period
	poll     time.Duration // KEDA's polling interval
	pods     []*pod
	desired  int32
	done     []float64 // completions (and fast failures) per step, for the metric
	lastSeen float64
	out      *Simulation
}

func newSim(sc Scenario) (*sim, error) {
	s := &sim{sc: sc, step: sc.Step, window: sc.Scaling.MetricWindow, timeout: sc.Replica.Timeout, out: &Simulation{BreachTime: map[string]time.Duration{}}}
	if s.step == 0 {
		s.step = DefaultStep
	}
	if time.Second%s.step != 0 {
		return nil, fmt.Errorf("step %s does not divide a second", s.step)
	}
	if s.window == 0 {
		s.window = DefaultMetricWindow
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	var err error
	var min int32
	if k := sc.Scaling.KEDA; k != nil {
		if s.keda, err = autoscale.NewScaler(*k); err != nil {
			return nil, err
		}
		s.hpa, s.poll, min = s.keda.HPA(), s.keda.Spec().PollingInterval, k.MinReplicas
	} else {
		if s.hpa, err = autoscale.NewController(*sc.Scaling.HPA); err != nil {
			return nil, err
		}
		min = sc.Scaling.HPA.Min
	}
	s.sync = s.hpa.Spec().SyncPeriod
	s.desired = sc.Scaling.Initial
	if s.desired == 0 {
		s.desired = min
	}
	for range s.desired {
		s.pods = append(s.pods, &pod{}) // ready from the start
	}
	return s, nil
}

func (s *sim) run() *Simulation {
	end := s.sc.Duration
	if end == 0 {
		end = s.sc.Traffic.End()
	}
	end = end.Truncate(time.Second)
	perSec := int(time.Second / s.step)
	dt := s.step.Seconds()
	capacity := s.sc.Replica.Capacity()
	prescaled := false
	for sec := time.Duration(0); sec < end; sec += time.Second {
		out := Second{At: sec, SLIs: map[string]float64{}}
		var answered, latSum float64
		good := make([]float64, len(s.judges))
		var events float64
		for k := range perSec {
			t := sec + time.Duration(k)*s.step
			if p := s.sc.Scaling.Prescale; p != nil && !prescaled && t >= p.From {
				prescaled = true
				s.hpa.SetMin(max(p.Replicas, s.hpa.Spec().Min))
				if s.desired < p.Replicas {
					s.scale(t, p.Replicas, "prescale", s.lastSeen)
				}
			}
			if s.keda != nil && s.due(t, s.poll) {
				if n := s.keda.Poll(epoch.Add(t), s.metric(), s.desired); n != s.desired {
					s.scale(t, n, "keda activation", s.metric())
				}
			}
			if s.due(t, s.sync) {
				s.lastSeen = s.metric()
				d := s.hpa.Decide(autoscale.Observation{Now: epoch.Add(t), Current: s.desired, Ready: s.ready(t), Value: s.lastSeen})
				if d.Desired != s.desired {
					s.scale(t, d.Desired, d.Reason, s.lastSeen)
				}
			}
			// arrivals
			a := s.sc.Traffic.RateAt(t) * dt
			out.Offered += a
			var stepDone float64
			ready := s.readyPods(t)
			if len(ready) == 0 {
				out.Failed += a
				stepDone += a // the gateway answers at once, and counts it
				events += a
				for i, j := range s.judges {
					if j.latency > 0 {
						good[i] += a // fast answers: good for latency, bad for availability
					}
				}
			} else {
				shares := s.spread(ready, a)
				for i, p := range ready {
					share := shares[i]
					if share <= 0 {
						continue // no request: no latency to count, none to record as the second's highest
					}
					lat := s.sc.Replica.latency(p.n)
					events += share
					if lat > s.timeout {
						// the gateway answers it with a timeout, and counts it
						out.Failed += share
						stepDone += share
						continue
					}
					p.n += share
					answered += share
					latSum += share * lat.Seconds()
					out.MaxLatency = max(out.MaxLatency, lat)
					for i, j := range s.judges {
						if j.latency == 0 || lat <= j.latency {
							good[i] += share
						}
					}
				}
			}
			// service
			for _, p := range s.pods {
				if p.readyAt > t {
					continue
				}
				d := min(p.n, s.sc.Replica.throughput(p.n)*dt)
				p.n -= d
				out.Served += d
				stepDone += d
			}
			s.pods = slices.DeleteFunc(s.pods, func(p *pod) bool { return p.terminating && p.n < 1e-9 })
			s.done = append(s.done, stepDone)
		}
		out.Replicas, out.Ready, out.Metric = s.desired, s.ready(sec+time.Second-s.step), s.lastSeen
		if answered > 0 {
			out.Latency = time.Duration(latSum / answered * float64(time.Second))
		}
		if out.Ready > 0 && capacity > 0 {
			out.Utilisation = out.Served / (float64(out.Ready) * capacity)
		}
		for i, j := range s.judges {
			sli := 1.0
			if events > 0 {
				sli = good[i] / events
				if j.latency == 0 {
					sli = (out.Offered - out.Failed) / out.Offered
				}
			}
			out.SLIs[j.id] = sli
			if sli < j.objective-1e-12 {
				out.Breached = append(out.Breached, j.id)
			}
		}
		s.out.PeakReplicas = max(s.out.PeakReplicas, out.Replicas)
		s.out.Seconds = append(s.out.Seconds, out)
	}
	s.out.Breaches = breaches(s.out.Seconds)
	for _, b := range s.out.Breaches {
		s.out.BreachTime[b.SLO] += b.To - b.From
	}
	return s.out
}

// due reports whether a periodic action (the HPA's sync, KEDA's poll)
// falls at t.
func (s *sim) due(t, period time.Duration) bool {
	d := t - s.sc.Scaling.SyncOffset
	return d >= 0 && d%period == 0
}

// spread shares a arrivals among the ready pods: equally for round robin;
// for least request, each to the pod with the fewest in flight, which
// levels the pods up from the emptiest (water filling).
func (s *sim) spread(ready []*pod, a float64) []float64 {
	out := make([]float64, len(ready))
	if s.sc.Scaling.Balance == BalanceRoundRobin {
		for i := range out {
			out[i] = a / float64(len(ready))
		}
		return out
	}
	ns := make([]float64, len(ready))
	for i, p := range ready {
		ns[i] = p.n
	}
	slices.Sort(ns)
	// the level L with sum(max(0, L − n_i)) = a
	level, rest := ns[0], a
	for k := 1; k <= len(ns); k++ {
		next := math.Inf(1)
		if k < len(ns) {
			next = ns[k]
		}
		if need := (next - level) * float64(k); need >= rest {
			level += rest / float64(k)
			break
		} else {
			rest -= need
			level = next
		}
	}
	for i, p := range ready {
		out[i] = max(level-p.n, 0)
	}
	return out
}

// epoch is the time the simulation's autoscaler sees at offset 0.
var epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// metric is the rate of completed requests over the metric window ending
// now, as a rate() over the gateway's counter reads it.
func (s *sim) metric() float64 {
	n := int(s.window / s.step)
	from := max(len(s.done)-n, 0)
	if len(s.done) == from {
		return 0
	}
	var sum float64
	for _, d := range s.done[from:] {
		sum += d
	}
	return sum / (float64(len(s.done)-from) * s.step.Seconds())
}

// readyPods are the pods that take new requests at t.
func (s *sim) readyPods(t time.Duration) []*pod {
	var r []*pod
	for _, p := range s.pods {
		if !p.terminating && p.readyAt <= t {
			r = append(r, p)
		}
	}
	return r
}

func (s *sim) ready(t time.Duration) int32 { return int32(len(s.readyPods(t))) }

// scale sets the replica count: new pods start now and serve after the
// start-up delay; removed pods are the newest that are still starting,
// then the most recently ready, as a ReplicaSet picks them.
func (s *sim) scale(t time.Duration, to int32, reason string, observed float64) {
	from := s.desired
	s.out.Events = append(s.out.Events, ScaleEvent{At: t, From: from, To: to, Reason: reason, Observed: observed})
	s.desired = to
	for n := from; n < to; n++ {
		s.pods = append(s.pods, &pod{readyAt: t + s.sc.Replica.StartupDelay})
	}
	for n := from; n > to; n-- {
		var victim *pod
		for _, p := range s.pods {
			if p.terminating {
				continue
			}
			if victim == nil || p.readyAt >= victim.readyAt {
				victim = p
			}
		}
		if victim == nil {
			break
		}
		if victim.readyAt > t {
			s.pods = slices.DeleteFunc(s.pods, func(p *pod) bool { return p == victim })
		} else {
			victim.terminating = true
		}
	}
}

// breaches finds the spans of consecutive seconds in which each SLO was
// missed.
func breaches(secs []Second) []Breach {
	var out []Breach
	open := map[string]int{} // SLO id -> index in out
	for _, sec := range secs {
		for id := range open {
			if !slices.Contains(sec.Breached, id) {
				delete(open, id)
			}
		}
		for _, id := range sec.Breached {
			if i, ok := open[id]; ok {
				out[i].To = sec.At + time.Second
				continue
			}
			open[id] = len(out)
			out = append(out, Breach{SLO: id, From: sec.At, To: sec.At + time.Second})
		}
	}
	return out
}

// describeBreaches says which SLOs were missed and for how long in all.
func (s *Simulation) describeBreaches() string {
	ids := make([]string, 0, len(s.BreachTime))
	for id := range s.BreachTime {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s for about %s", id, fmtDur(s.BreachTime[id]))
	}
	return strings.Join(parts, " and ")
}
