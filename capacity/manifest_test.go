package capacity

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	policyv1 "k8s.io/api/policy/v1"
	vpav1 "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/apis/autoscaling.k8s.io/v1"
	"sigs.k8s.io/yaml"

	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/internal/config/configtest"
)

// blackFridayPlan is a plan for 1000 req/s at peak and 200 at base on
// replicas of 100 req/s, N+1, with a 10x spike in 30s.
func blackFridayPlan(t *testing.T) (*Plan, ManifestOptions) {
	t.Helper()
	p, err := NewPlan(PlanInput{Capacity: 100, CapacitySource: "measured knee", Peak: 1000, PeakSource: "given", Base: 200, Spare: 1})
	if err != nil {
		t.Fatal(err)
	}
	o := ManifestOptions{Name: "shop", Namespace: "prod", Route: "checkout", CPUPerRequest: 0.004, MemoryPerReplica: 96 << 20,
		Spike: Spike{Base: 100, Peak: 1000, Factor: 10, Rise: 30 * time.Second}}
	return p, o
}

// decodeStrict decodes YAML into v, failing on any field v's type lacks:
// the check that a manifest is what the Kubernetes API would accept.
func decodeStrict(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(data, v); err != nil {
		t.Fatalf("strict decoding into %T: %v\n%s", v, err, data)
	}
}

func TestHPAManifestDecodesIntoTheAPITypes(t *testing.T) {
	t.Parallel()
	p, o := blackFridayPlan(t)
	data, err := p.HPA(o)
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, "testdata/hpa.golden.yaml", data)
	var h autoscalingv2.HorizontalPodAutoscaler
	decodeStrict(t, data, &h)
	if h.APIVersion != "autoscaling/v2" || h.Kind != "HorizontalPodAutoscaler" || h.Name != "shop" || h.Namespace != "prod" {
		t.Errorf("head %+v %+v", h.TypeMeta, h.ObjectMeta)
	}
	s := h.Spec
	if *s.MinReplicas != 4 || s.MaxReplicas != 20 || s.ScaleTargetRef.Kind != "Deployment" || s.ScaleTargetRef.Name != "shop" {
		t.Errorf("spec %+v", s)
	}
	m := s.Metrics[0]
	if m.Type != autoscalingv2.ExternalMetricSourceType || m.External.Metric.Name != RequestMetric ||
		m.External.Metric.Selector.MatchLabels["http_route"] != "checkout" ||
		m.External.Target.Type != autoscalingv2.AverageValueMetricType || m.External.Target.AverageValue.String() != "70" {
		t.Errorf("metric %+v", m.External)
	}
	up := s.Behavior.ScaleUp
	if *up.StabilizationWindowSeconds != 0 || *up.SelectPolicy != autoscalingv2.MaxChangePolicySelect || len(up.Policies) != 2 ||
		up.Policies[1].Type != autoscalingv2.PodsScalingPolicy || up.Policies[1].Value != 16 || up.Policies[1].PeriodSeconds != 15 {
		t.Errorf("scale-up %+v", up)
	}
	if down := s.Behavior.ScaleDown; *down.StabilizationWindowSeconds != 600 || down.Policies[0].Type != autoscalingv2.PercentScalingPolicy || down.Policies[0].Value != 10 {
		t.Errorf("scale-down %+v", down)
	}

	o.Metric = MetricCPU
	data, err = p.HPA(o)
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, "testdata/hpa-cpu.golden.yaml", data)
	var c autoscalingv2.HorizontalPodAutoscaler
	decodeStrict(t, data, &c)
	if r := c.Spec.Metrics[0].Resource; r == nil || r.Name != "cpu" || r.Target.Type != autoscalingv2.UtilizationMetricType || *r.Target.AverageUtilization != 70 {
		t.Errorf("cpu metric %+v", c.Spec.Metrics[0])
	}
}

func TestHPABehaviorIsWhatTheSimulationUses(t *testing.T) {
	t.Parallel()
	p, o := blackFridayPlan(t)
	want, _ := p.Behavior(o.Spike)
	data, _ := p.HPA(o)
	var h autoscalingv2.HorizontalPodAutoscaler
	decodeStrict(t, data, &h)
	got := autoscale.Behavior{}
	for i, r := range []*autoscalingv2.HPAScalingRules{h.Spec.Behavior.ScaleUp, h.Spec.Behavior.ScaleDown} {
		rules := autoscale.Rules{Window: time.Duration(*r.StabilizationWindowSeconds) * time.Second, Select: autoscale.SelectPolicy(*r.SelectPolicy)}
		for _, p := range r.Policies {
			rules.Policies = append(rules.Policies, autoscale.Policy{Type: autoscale.PolicyType(p.Type), Value: p.Value, Period: time.Duration(p.PeriodSeconds) * time.Second})
		}
		if i == 0 {
			got.ScaleUp = rules
		} else {
			got.ScaleDown = rules
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("manifest behaviour %+v, simulated %+v", got, want)
	}
	// a gentle ramp gets the default scale-up
	gentle, _ := p.Behavior(Spike{Base: 100, Peak: 130, Factor: 1.3, Rise: time.Hour})
	if fmt.Sprint(gentle.ScaleUp) != fmt.Sprint(autoscale.DefaultBehavior().ScaleUp) {
		t.Errorf("gentle ramp scale-up %+v", gentle.ScaleUp)
	}
	// a rise from no traffic at all (a recorded day from midnight, KEDA
	// from zero) is a spike however slow: its factor has no bound
	fromZero, why := p.Behavior(Spike{Base: 0, Peak: 1.3, Rise: time.Hour})
	if fmt.Sprint(fromZero.ScaleUp) == fmt.Sprint(autoscale.DefaultBehavior().ScaleUp) || !strings.HasPrefix(why, "a rise to 1.3 req/s: scale up by up to") {
		t.Errorf("a rise from zero: scale-up %+v (%s)", fromZero.ScaleUp, why)
	}
}

func TestPDBAndVPADecodeIntoTheAPITypes(t *testing.T) {
	t.Parallel()
	p, o := blackFridayPlan(t)
	data, err := p.PDB(o)
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, "testdata/pdb.golden.yaml", data)
	var pdb policyv1.PodDisruptionBudget
	decodeStrict(t, data, &pdb)
	// min 4 replicas where the base needs 3: one may go
	if pdb.Spec.MaxUnavailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "shop" || pdb.Spec.MinAvailable != nil {
		t.Errorf("pdb %+v", pdb.Spec)
	}

	data, err = p.VPA(o)
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, "testdata/vpa.golden.yaml", data)
	var vpa vpav1.VerticalPodAutoscaler
	decodeStrict(t, data, &vpa)
	cp := vpa.Spec.ResourcePolicy.ContainerPolicies[0]
	// 4 ms of CPU per request × 100 req/s = 0.4 cores
	if *vpa.Spec.UpdatePolicy.UpdateMode != vpav1.UpdateModeOff || cp.MinAllowed.Cpu().String() != "200m" || cp.MaxAllowed.Cpu().String() != "800m" ||
		cp.MinAllowed.Memory().String() != "96Mi" || cp.MaxAllowed.Memory().String() != "192Mi" || vpa.Spec.TargetRef.Name != "shop" {
		t.Errorf("vpa %+v", vpa.Spec)
	}
	if _, err := p.VPA(ManifestOptions{Name: "shop"}); err == nil {
		t.Error("a VPA without measurements: want an error")
	}
}

func TestKEDAManifestMatchesTheCRDSchema(t *testing.T) {
	t.Parallel()
	schema := loadCRDSchema(t, "testdata/keda.sh_scaledobjects.yaml")
	p, o := blackFridayPlan(t)
	data, err := p.KEDA(o)
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, "testdata/keda.golden.yaml", data)
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if errs := schema.validate("", doc); len(errs) > 0 {
		t.Errorf("the ScaledObject breaks the CRD schema:\n%s", strings.Join(errs, "\n"))
	}
	if !strings.Contains(string(data), `query: sum(rate(http_server_request_duration_seconds_count{http_route="checkout"}[1m]))`) || !strings.Contains(string(data), `threshold: "70"`) {
		t.Errorf("trigger:\n%s", data)
	}
	// the validator itself catches what the schema forbids
	for _, bad := range []string{
		strings.Replace(string(data), "pollingInterval: 15", "pollingInterval: fast", 1),
		strings.Replace(string(data), "minReplicaCount: 4", "minReplicaCount: 4\n  minReplicas: 4", 1),
		strings.Replace(string(data), "  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: shop\n", "  scaleTargetRef:\n    kind: Deployment\n", 1),
		strings.Replace(string(data), "maxReplicaCount: 20", "maxReplicaCount: 3000000000", 1),
	} {
		var d any
		if err := yaml.Unmarshal([]byte(bad), &d); err != nil {
			t.Fatal(err)
		}
		if errs := schema.validate("", d); len(errs) == 0 {
			t.Errorf("the validator passed a broken ScaledObject:\n%s", bad)
		}
	}
}

func TestManifestsStream(t *testing.T) {
	t.Parallel()
	p, o := blackFridayPlan(t)
	data, err := p.Manifests(o)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(data, []byte("---\n"))
	var kinds []string
	for _, d := range docs[1:] {
		var h struct{ Kind string }
		if err := yaml.Unmarshal(d, &h); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, h.Kind)
	}
	if strings.Join(kinds, ",") != "HorizontalPodAutoscaler,ScaledObject,PodDisruptionBudget,VerticalPodAutoscaler" {
		t.Errorf("kinds %v", kinds)
	}
	o.CPUPerRequest = 0
	data, _ = p.Manifests(o)
	if bytes.Contains(data, []byte("VerticalPodAutoscaler")) {
		t.Error("no CPU measured: the VPA should be left out")
	}
	if _, err := p.HPA(ManifestOptions{Name: "shop", Metric: MetricCPU}); err == nil {
		t.Error("a CPU HPA without the CPU per request: want an error")
	}
	if _, err := p.HPA(ManifestOptions{}); err == nil {
		t.Error("no name: want an error")
	}
}

// crdSchema is an OpenAPI v3 structural schema, as a CRD publishes it.
type crdSchema struct {
	Type                 string                `json:"type"`
	Format               string                `json:"format"`
	Properties           map[string]*crdSchema `json:"properties"`
	Required             []string              `json:"required"`
	Items                *crdSchema            `json:"items"`
	AdditionalProperties *crdSchema            `json:"additionalProperties"`
}

// loadCRDSchema reads the openAPIV3Schema of a CRD's first version.
func loadCRDSchema(t *testing.T, path string) *crdSchema {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema *crdSchema `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	if len(crd.Spec.Versions) == 0 || crd.Spec.Versions[0].Schema.OpenAPIV3Schema == nil {
		t.Fatalf("%s: no schema", path)
	}
	return crd.Spec.Versions[0].Schema.OpenAPIV3Schema
}

// validate checks v against the schema, for what KEDA's schema uses:
// types, int32 ranges, properties (unknown ones are errors, as a strict
// API server reports them), required properties, array items and
// additionalProperties.
func (s *crdSchema) validate(path string, v any) []string {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %T", v)
			return errs
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				bad("required property %q is missing", r)
			}
		}
		for k, val := range m {
			sub := s.Properties[k]
			if sub == nil {
				sub = s.AdditionalProperties
			}
			if sub == nil {
				if s.Properties != nil {
					bad("unknown property %q", k)
				}
				continue // an object without properties: anything goes (metadata)
			}
			errs = append(errs, sub.validate(path+"."+k, val)...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("want an array, got %T", v)
			return errs
		}
		for i, e := range a {
			errs = append(errs, s.Items.validate(fmt.Sprintf("%s[%d]", path, i), e)...)
		}
	case "string":
		if _, ok := v.(string); !ok {
			bad("want a string, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %T", v)
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			bad("want an integer, got %v", v)
		} else if s.Format == "int32" && (f < -1<<31 || f > 1<<31-1) {
			bad("%v is out of int32's range", f)
		}
	case "":
	default:
		bad("the validator does not know type %q", s.Type)
	}
	return errs
}
