package slo

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// k8sObject is the Kubernetes object an SLO was read from (Sloth's
// PrometheusServiceLevel), whose name, namespace and labels the
// PrometheusRule for it takes, as Sloth's own does.
type k8sObject struct {
	Name, Namespace string
	Labels          map[string]string
}

// PrometheusRule is a Prometheus Operator PrometheusRule
// (monitoring.coreos.com/v1): the rule groups of a rule file as a
// Kubernetes resource, which the operator loads into the Prometheus
// servers whose ruleSelector matches its labels.
type PrometheusRule struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   ObjectMeta `yaml:"metadata"`
	Spec       RuleFile   `yaml:"spec"`
}

// ObjectMeta is the part of a Kubernetes object's metadata a
// PrometheusRule needs.
type ObjectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace,omitempty"`
	Labels    map[string]string `yaml:"labels,omitempty"`
}

var (
	dnsSubdomainRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	dnsLabelRE     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	k8sLabelKeyRE  = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	k8sLabelValRE  = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
	notDNSRE       = regexp.MustCompile(`[^a-z0-9-]+`)
)

// NewPrometheusRule wraps the rules of slos in a PrometheusRule. Empty
// fields of meta are taken from the Sloth PrometheusServiceLevel the
// SLOs were read from, when they all come from one (its name, namespace
// and labels, as Sloth's controller does); otherwise the name is made of
// the SLOs' services ("checkout-slos") and the namespace is left to
// kubectl. Names, namespaces and labels Kubernetes would refuse are
// errors.
func NewPrometheusRule(slos []*SLO, rules RuleFile, meta ObjectMeta) (PrometheusRule, error) {
	var from *k8sObject
	for i, s := range slos {
		if s.k8s == nil || i > 0 && (s.k8s.Name != from.Name || s.k8s.Namespace != from.Namespace) {
			from = nil
			break
		}
		from = s.k8s
	}
	if from != nil {
		if meta.Name == "" {
			meta.Name = from.Name
		}
		if meta.Namespace == "" {
			meta.Namespace = from.Namespace
		}
		if meta.Labels == nil {
			meta.Labels = from.Labels
		}
	}
	if meta.Name == "" {
		var services []string
		for _, s := range slos {
			if name := strings.Trim(notDNSRE.ReplaceAllString(strings.ToLower(s.Spec.Service), "-"), "-"); name != "" && !slices.Contains(services, name) {
				services = append(services, name)
			}
		}
		meta.Name = strings.Join(append(services, "slos"), "-")
		if len(meta.Name) > 253 {
			meta.Name = strings.TrimRight(meta.Name[:248], "-.") + "-slos"
		}
	}
	switch {
	case len(meta.Name) > 253 || !dnsSubdomainRE.MatchString(meta.Name):
		return PrometheusRule{}, fmt.Errorf("PrometheusRule name %q: want lower-case letters, digits, '-' and '.', at most 253", meta.Name)
	case meta.Namespace != "" && (len(meta.Namespace) > 63 || !dnsLabelRE.MatchString(meta.Namespace)):
		return PrometheusRule{}, fmt.Errorf("namespace %q: want lower-case letters, digits and '-', at most 63", meta.Namespace)
	}
	for _, k := range sortedKeys(meta.Labels) {
		v := meta.Labels[k]
		name := k[strings.LastIndexByte(k, '/')+1:]
		if len(name) > 63 || !k8sLabelKeyRE.MatchString(k) || len(v) > 63 || !k8sLabelValRE.MatchString(v) {
			return PrometheusRule{}, fmt.Errorf("label %s=%s is not a Kubernetes label (names and values: letters, digits, '-', '_' and '.', at most 63)", k, v)
		}
	}
	return PrometheusRule{APIVersion: "monitoring.coreos.com/v1", Kind: "PrometheusRule", Metadata: meta, Spec: rules}, nil
}

// Marshal writes the PrometheusRule as YAML under a header saying where
// it came from.
func (r PrometheusRule) Marshal(header string) ([]byte, error) { return marshalYAML(header, r) }
