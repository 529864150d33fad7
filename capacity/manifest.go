package capacity

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/capacity/autoscale"
)

// RequestMetric is the gateway's request counter that the request-rate
// autoscalers read: every request the relia gateway answers counts once,
// labelled by http_route.
const RequestMetric = "http_server_request_duration_seconds_count"

// The metrics an HPA may scale on.
const (
	MetricRequests = "requests"
	MetricCPU      = "cpu"
)

// ManifestOptions say what the manifests are for.
type ManifestOptions struct {
	// Name is the Deployment the autoscalers act on, and the name of each
	// object; Namespace, when set, their namespace.
	Name      string
	Namespace string
	// Route, when set, restricts the request rate to one gateway route
	// (its http_route label).
	Route string
	// Metric is what the HPA scales on: MetricRequests (the default,
	// requests per second per replica through an External metric over
	// RequestMetric) or MetricCPU (CPU utilisation of the requests, from
	// the measured CPU per request).
	Metric string
	// Prometheus is the server KEDA's trigger queries; default
	// http://prometheus.monitoring.svc:9090.
	Prometheus string
	// Window is the range of the rate() in KEDA's query; default 1m.
	Window time.Duration
	// CPUPerRequest is the measured CPU time per request in seconds;
	// MemoryPerReplica the measured resident memory of a replica at the
	// knee, in bytes. Either 0 leaves out what needs it (the VPA's bounds
	// for it, a CPU HPA).
	CPUPerRequest    float64
	MemoryPerReplica int64
	// Spike is the traffic's spike, which shapes the scaling behaviour.
	Spike Spike
}

// Behavior chooses the HPA's scaling behaviour from the traffic's spike:
// for a spike (at least 1.5x within 2 minutes, or 3x however slowly,
// which a rise from no traffic at all is) the
// scale-up may go from the minimum to the maximum in one 15-second
// period, since a policy that adds 4 pods at a time would take minutes to
// get there; otherwise the default scale-up. Scale-down is slow either
// way, and slower after spikes (10 minutes' window, 10% a minute), so
// that the replicas a spike needed are not dropped between its waves.
func (p *Plan) Behavior(sp Spike) (autoscale.Behavior, string) {
	spiky := sp.Factor >= 3 || (sp.Factor >= 1.5 && sp.Rise <= 2*time.Minute) || (sp.Base == 0 && sp.Peak > 0)
	if spiky {
		jump := int32(max(p.MaxReplicas-p.MinReplicas, 1))
		return autoscale.Behavior{
				ScaleUp: autoscale.Rules{Select: autoscale.SelectMax, Policies: []autoscale.Policy{
					{Type: autoscale.Percent, Value: 100, Period: 15 * time.Second},
					{Type: autoscale.Pods, Value: jump, Period: 15 * time.Second},
				}},
				ScaleDown: autoscale.Rules{Window: 10 * time.Minute, Select: autoscale.SelectMax, Policies: []autoscale.Policy{
					{Type: autoscale.Percent, Value: 10, Period: time.Minute},
				}},
			}, fmt.Sprintf("%s: scale up by up to %d pods or 100%% every 15s with no stabilisation; scale down by 10%% a minute after a 10m window",
				sp, jump)
	}
	b := autoscale.DefaultBehavior()
	b.ScaleDown.Policies = []autoscale.Policy{{Type: autoscale.Percent, Value: 20, Period: time.Minute}}
	return b, "no spike: the default scale-up (4 pods or 100% every 15s); scale down by 20% a minute after a 5m window"
}

// object is the head every manifest shares.
type object struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Metadata   metadata `yaml:"metadata"`
	Spec       any      `yaml:"spec"`
}

type metadata struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace,omitempty"`
	Labels    map[string]string `yaml:"labels,omitempty"`
}

type crossRef struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Name       string `yaml:"name"`
}

// The HorizontalPodAutoscaler's fields, as autoscaling/v2 names them.
type hpaSpec struct {
	ScaleTargetRef crossRef     `yaml:"scaleTargetRef"`
	MinReplicas    int          `yaml:"minReplicas"`
	MaxReplicas    int          `yaml:"maxReplicas"`
	Metrics        []hpaMetric  `yaml:"metrics"`
	Behavior       *hpaBehavior `yaml:"behavior,omitempty"`
}

type hpaMetric struct {
	Type     string       `yaml:"type"`
	External *hpaExternal `yaml:"external,omitempty"`
	Resource *hpaResource `yaml:"resource,omitempty"`
}

type hpaExternal struct {
	Metric hpaMetricID `yaml:"metric"`
	Target hpaTarget   `yaml:"target"`
}

type hpaMetricID struct {
	Name     string         `yaml:"name"`
	Selector *labelSelector `yaml:"selector,omitempty"`
}

type labelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type hpaResource struct {
	Name   string    `yaml:"name"`
	Target hpaTarget `yaml:"target"`
}

type hpaTarget struct {
	Type               string `yaml:"type"`
	AverageValue       string `yaml:"averageValue,omitempty"`
	AverageUtilization int    `yaml:"averageUtilization,omitempty"`
}

type hpaBehavior struct {
	ScaleUp   hpaRules `yaml:"scaleUp"`
	ScaleDown hpaRules `yaml:"scaleDown"`
}

type hpaRules struct {
	StabilizationWindowSeconds int         `yaml:"stabilizationWindowSeconds"`
	SelectPolicy               string      `yaml:"selectPolicy"`
	Policies                   []hpaPolicy `yaml:"policies"`
}

type hpaPolicy struct {
	Type          string `yaml:"type"`
	Value         int32  `yaml:"value"`
	PeriodSeconds int    `yaml:"periodSeconds"`
}

func behaviorYAML(b autoscale.Behavior) *hpaBehavior {
	rules := func(r autoscale.Rules) hpaRules {
		out := hpaRules{StabilizationWindowSeconds: int(r.Window / time.Second), SelectPolicy: string(r.Select)}
		if out.SelectPolicy == "" {
			out.SelectPolicy = string(autoscale.SelectMax)
		}
		for _, p := range r.Policies {
			out.Policies = append(out.Policies, hpaPolicy{Type: string(p.Type), Value: p.Value, PeriodSeconds: int(p.Period / time.Second)})
		}
		return out
	}
	return &hpaBehavior{ScaleUp: rules(b.ScaleUp), ScaleDown: rules(b.ScaleDown)}
}

func (o ManifestOptions) meta(component string) metadata {
	return metadata{Name: o.Name, Namespace: o.Namespace, Labels: map[string]string{"app.kubernetes.io/managed-by": "relia", "relia.dev/plan": component}}
}

func (o ManifestOptions) target() crossRef {
	return crossRef{APIVersion: "apps/v1", Kind: "Deployment", Name: o.Name}
}

// validate checks the options the manifests need.
func (o ManifestOptions) validate() error {
	if o.Name == "" {
		return errors.New("the manifests need the name of the Deployment")
	}
	switch o.Metric {
	case "", MetricRequests:
	case MetricCPU:
		if o.CPUPerRequest <= 0 {
			return errors.New("an HPA on CPU needs the measured CPU per request")
		}
	default:
		return fmt.Errorf("metric %q: want %s or %s", o.Metric, MetricRequests, MetricCPU)
	}
	return nil
}

// HPA writes the HorizontalPodAutoscaler (autoscaling/v2) of the plan:
// minReplicas and maxReplicas from the plan, the behaviour from the
// spike, and a target of PerReplica requests per second per replica on
// the gateway's request rate (an External metric over RequestMetric,
// which an adapter such as prometheus-adapter serves as a rate), or, with
// MetricCPU, the CPU utilisation that PerReplica requests a second cost
// against a request of what Capacity requests a second cost.
func (p *Plan) HPA(o ManifestOptions) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	b, _ := p.Behavior(o.Spike)
	spec := hpaSpec{ScaleTargetRef: o.target(), MinReplicas: p.MinReplicas, MaxReplicas: p.MaxReplicas, Behavior: behaviorYAML(b)}
	if o.Metric == MetricCPU {
		spec.Metrics = []hpaMetric{{Type: "Resource", Resource: &hpaResource{Name: "cpu",
			Target: hpaTarget{Type: "Utilization", AverageUtilization: int(math.Round(100 * p.Input.Utilisation))}}}}
	} else {
		id := hpaMetricID{Name: RequestMetric}
		if o.Route != "" {
			id.Selector = &labelSelector{MatchLabels: map[string]string{"http_route": o.Route}}
		}
		spec.Metrics = []hpaMetric{{Type: "External", External: &hpaExternal{Metric: id, Target: hpaTarget{Type: "AverageValue", AverageValue: quantity(p.PerReplica)}}}}
	}
	return encode(object{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Metadata: o.meta("hpa"), Spec: spec})
}

// The ScaledObject's fields, as keda.sh/v1alpha1 names them.
type kedaSpec struct {
	ScaleTargetRef  crossRef      `yaml:"scaleTargetRef"`
	PollingInterval int           `yaml:"pollingInterval"`
	CooldownPeriod  int           `yaml:"cooldownPeriod"`
	MinReplicaCount int           `yaml:"minReplicaCount"`
	MaxReplicaCount int           `yaml:"maxReplicaCount"`
	Advanced        kedaAdvanced  `yaml:"advanced"`
	Triggers        []kedaTrigger `yaml:"triggers"`
}

type kedaAdvanced struct {
	HorizontalPodAutoscalerConfig struct {
		Behavior *hpaBehavior `yaml:"behavior"`
	} `yaml:"horizontalPodAutoscalerConfig"`
}

type kedaTrigger struct {
	Type     string            `yaml:"type"`
	Name     string            `yaml:"name"`
	Metadata map[string]string `yaml:"metadata"`
}

// KEDAQuery is the PromQL of the request-rate trigger: the gateway's
// requests per second over window, for one route or all.
func KEDAQuery(route string, window time.Duration) string {
	sel := ""
	if route != "" {
		sel = fmt.Sprintf(`{http_route=%q}`, route)
	}
	return fmt.Sprintf("sum(rate(%s%s[%s]))", RequestMetric, sel, promDuration(window))
}

// KEDA writes the KEDA ScaledObject of the plan: a Prometheus trigger on
// the gateway's request rate with the per-replica target as its
// threshold, activation above zero requests, polling every 15 s, the
// plan's bounds and the behaviour from the spike.
func (p *Plan) KEDA(o ManifestOptions) ([]byte, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Prometheus == "" {
		o.Prometheus = "http://prometheus.monitoring.svc:9090"
	}
	if o.Window == 0 {
		o.Window = time.Minute
	}
	b, _ := p.Behavior(o.Spike)
	spec := kedaSpec{ScaleTargetRef: o.target(), PollingInterval: 15, CooldownPeriod: 300, MinReplicaCount: p.MinReplicas, MaxReplicaCount: p.MaxReplicas,
		Triggers: []kedaTrigger{{Type: "prometheus", Name: "gateway-request-rate", Metadata: map[string]string{
			"serverAddress":       o.Prometheus,
			"query":               KEDAQuery(o.Route, o.Window),
			"threshold":           strconv.FormatFloat(round3(p.PerReplica), 'f', -1, 64),
			"activationThreshold": "0",
		}}}}
	spec.Advanced.HorizontalPodAutoscalerConfig.Behavior = behaviorYAML(b)
	return encode(object{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Metadata: o.meta("keda"), Spec: spec})
}

// The VerticalPodAutoscaler's fields, as autoscaling.k8s.io/v1 names them.
type vpaSpec struct {
	TargetRef    crossRef `yaml:"targetRef"`
	UpdatePolicy struct {
		UpdateMode string `yaml:"updateMode"`
	} `yaml:"updatePolicy"`
	ResourcePolicy struct {
		ContainerPolicies []vpaContainerPolicy `yaml:"containerPolicies"`
	} `yaml:"resourcePolicy"`
}

type vpaContainerPolicy struct {
	ContainerName       string            `yaml:"containerName"`
	ControlledResources []string          `yaml:"controlledResources"`
	MinAllowed          map[string]string `yaml:"minAllowed"`
	MaxAllowed          map[string]string `yaml:"maxAllowed"`
}

// Resources are a replica's requests as the plan recommends them.
type Resources struct {
	// CPU is in cores: what Capacity requests a second cost.
	CPU float64 `json:"cpu_cores"`
	// Memory is in bytes: the measured resident memory at the knee.
	Memory int64 `json:"memory_bytes"`
}

// Resources recommends a replica's requests from the measurements: the
// CPU of Capacity requests a second (so the CPU HPA's utilisation target
// is the plan's), and the memory measured at the knee; 0 where the
// measurement is missing.
func (p *Plan) Resources(o ManifestOptions) Resources {
	return Resources{CPU: o.CPUPerRequest * p.Input.Capacity, Memory: o.MemoryPerReplica}
}

// VPA writes a VerticalPodAutoscaler in recommendation mode (updateMode
// Off: it does not evict pods, and it does not fight the HPA over CPU)
// whose bounds hold the measured requests: from half to twice the CPU of
// Capacity requests a second, and from the measured memory to twice it.
// Its recommendations then show whether production agrees with the
// measurement.
func (p *Plan) VPA(o ManifestOptions) ([]byte, error) {
	if o.Name == "" {
		return nil, errors.New("the manifests need the name of the Deployment")
	}
	r := p.Resources(o)
	if r.CPU <= 0 || r.Memory <= 0 {
		return nil, errors.New("a VPA needs the measured CPU per request and memory per replica")
	}
	var spec vpaSpec
	spec.TargetRef = o.target()
	spec.UpdatePolicy.UpdateMode = "Off"
	spec.ResourcePolicy.ContainerPolicies = []vpaContainerPolicy{{
		ContainerName:       "*",
		ControlledResources: []string{"cpu", "memory"},
		MinAllowed:          map[string]string{"cpu": cpuQuantity(r.CPU / 2), "memory": memQuantity(r.Memory)},
		MaxAllowed:          map[string]string{"cpu": cpuQuantity(r.CPU * 2), "memory": memQuantity(2 * r.Memory)},
	}}
	return encode(object{APIVersion: "autoscaling.k8s.io/v1", Kind: "VerticalPodAutoscaler", Metadata: o.meta("vpa"), Spec: spec})
}

type pdbSpec struct {
	MaxUnavailable int           `yaml:"maxUnavailable"`
	Selector       labelSelector `yaml:"selector"`
}

// PDB writes a PodDisruptionBudget that lets voluntary disruptions (a
// node drain, an upgrade) take at most the replicas the plan holds beyond
// what the base rate needs, and at least one so that drains can proceed:
// the SLO holds through them at the base rate. It selects the pods
// labelled app.kubernetes.io/name: Name.
func (p *Plan) PDB(o ManifestOptions) ([]byte, error) {
	if o.Name == "" {
		return nil, errors.New("the manifests need the name of the Deployment")
	}
	spec := pdbSpec{MaxUnavailable: p.MaxUnavailable(), Selector: labelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": o.Name}}}
	return encode(object{APIVersion: "policy/v1", Kind: "PodDisruptionBudget", Metadata: o.meta("pdb"), Spec: spec})
}

// MaxUnavailable is the PodDisruptionBudget's allowance: the minimum
// replicas beyond those the base rate needs, at least one.
func (p *Plan) MaxUnavailable() int { return max(p.MinReplicas-p.ForBase, 1) }

// Manifests writes every manifest the measurements allow, as one YAML
// stream: the HPA, the KEDA ScaledObject (use one of the two), the VPA
// when CPU and memory were measured, and the PodDisruptionBudget.
func (p *Plan) Manifests(o ManifestOptions) ([]byte, error) {
	var out bytes.Buffer
	gens := []func(ManifestOptions) ([]byte, error){p.HPA, p.KEDA, p.PDB}
	if r := p.Resources(o); r.CPU > 0 && r.Memory > 0 {
		gens = append(gens, p.VPA)
	}
	for _, g := range gens {
		b, err := g(o)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(b)
	}
	return out.Bytes(), nil
}

func encode(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("writing the manifest: %w", err)
	}
	return b.Bytes(), enc.Close()
}

// quantity writes a rate as a Kubernetes quantity with millis where it
// is not whole: 70 → "70", 66.7 → "66700m".
func quantity(v float64) string {
	m := int64(math.Round(v * 1000))
	if m%1000 == 0 {
		return strconv.FormatInt(m/1000, 10)
	}
	return strconv.FormatInt(m, 10) + "m"
}

// cpuQuantity writes cores as millicores, at least 1m.
func cpuQuantity(cores float64) string {
	return strconv.FormatInt(max(int64(math.Ceil(cores*1000)), 1), 10) + "m"
}

// memQuantity writes bytes in whole MiB, rounded up.
func memQuantity(b int64) string {
	const mib = 1 << 20
	return strconv.FormatInt((b+mib-1)/mib, 10) + "Mi"
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// promDuration writes a duration as PromQL does: 1m, 30s, 1h30m.
func promDuration(d time.Duration) string {
	if d <= 0 {
		return "1m"
	}
	var out string
	for _, u := range []struct {
		d time.Duration
		s string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d >= u.d {
			out += strconv.FormatInt(int64(d/u.d), 10) + u.s
			d %= u.d
		}
	}
	if out == "" {
		return "1s"
	}
	return out
}
