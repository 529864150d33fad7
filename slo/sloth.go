package slo

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/internal/config"
)

// Sloth's Kubernetes resource: its apiVersion and the kind of an SLO
// group (Sloth's own AlertWindows kind is not an SLO).
const (
	FormatSlothK8s = "sloth.slok.dev/v1"
	KindSlothK8s   = "PrometheusServiceLevel"
)

// slothSpec is Sloth's prometheus/v1 spec: one service, several SLOs.
// The Kubernetes form (slothK8s) has the same fields under camelCase
// names and is converted into this one.
type slothSpec struct {
	Service    string            `yaml:"service" config:"required"`
	Labels     map[string]string `yaml:"labels"`
	SLOPlugins *slothPlugins     `yaml:"slo_plugins"`
	SLOs       []slothSLO        `yaml:"slos" config:"required"`
}

// slothPlugins is a chain of Sloth SLO plugins: Go code that changes the
// rules Sloth writes. relia reads the chain to refuse it, except for the
// plugin whose effect is part of relia's own spec (alertForPlugin).
type slothPlugins struct {
	OverridePrevious bool `yaml:"overridePrevious"`
	Chain            []struct {
		ID       string    `yaml:"id" config:"required"`
		Config   yaml.Node `yaml:"config"`
		Priority int       `yaml:"priority"`
	} `yaml:"chain"`
}

// alertForPlugin is Sloth's plugin that gives alerts the for: of
// page_alert.for and ticket_alert.for, which relia does by itself.
const alertForPlugin = "sloth.dev/contrib/alert_for/v1"

type slothSLO struct {
	Name        string            `yaml:"name" config:"required"`
	Objective   float64           `yaml:"objective" config:"required"` // a percentage
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	Plugins     *slothPlugins     `yaml:"plugins"`
	SLI         slothSLI          `yaml:"sli" config:"required"`
	Alerting    slothAlerting     `yaml:"alerting"`
}

type slothSLI struct {
	Events *slothEvents `yaml:"events"`
	// Raw and Plugin are read only to be refused with a reason.
	Raw    yaml.Node `yaml:"raw"`
	Plugin yaml.Node `yaml:"plugin"`
}

func (slothSLI) OneOfNoun() string { return "SLI kind" }

type slothEvents struct {
	ErrorQuery string `yaml:"error_query" config:"required"`
	TotalQuery string `yaml:"total_query" config:"required"`
}

type slothAlerting struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	PageAlert   slothAlert        `yaml:"page_alert"`
	TicketAlert slothAlert        `yaml:"ticket_alert"`
}

type slothAlert struct {
	Disable     bool              `yaml:"disable"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	// For is the alert's for: (Prometheus's pending time), which Sloth
	// applies with its alert_for plugin and relia always.
	For time.Duration `yaml:"for"`
}

// slothK8s is Sloth's PrometheusServiceLevel resource.
type slothK8s struct {
	Metadata k8sMetadata `yaml:"metadata" config:"required"`
	Spec     struct {
		Service    string            `yaml:"service" config:"required"`
		Labels     map[string]string `yaml:"labels"`
		SLOPlugins *slothPlugins     `yaml:"sloPlugins"`
		SLOs       []struct {
			Name        string            `yaml:"name" config:"required"`
			Objective   float64           `yaml:"objective" config:"required"`
			Description string            `yaml:"description"`
			Labels      map[string]string `yaml:"labels"`
			Plugins     *slothPlugins     `yaml:"plugins"`
			SLI         slothK8sSLI       `yaml:"sli" config:"required"`
			Alerting    struct {
				Name        string            `yaml:"name"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
				PageAlert   slothAlert        `yaml:"pageAlert"`
				TicketAlert slothAlert        `yaml:"ticketAlert"`
			} `yaml:"alerting"`
		} `yaml:"slos" config:"required"`
	} `yaml:"spec" config:"required"`
	// Status is what Sloth's controller wrote back; it is ignored.
	Status yaml.Node `yaml:"status"`
}

type slothK8sSLI struct {
	Events *struct {
		ErrorQuery string `yaml:"errorQuery" config:"required"`
		TotalQuery string `yaml:"totalQuery" config:"required"`
	} `yaml:"events"`
	Raw    yaml.Node `yaml:"raw"`
	Plugin yaml.Node `yaml:"plugin"`
}

func (slothK8sSLI) OneOfNoun() string { return "SLI kind" }

// k8sMetadata is a Kubernetes object's metadata, every field of
// ObjectMeta named so that a resource exported from a cluster reads;
// relia uses the name, namespace and labels (for the PrometheusRule it
// writes).
type k8sMetadata struct {
	Name                       string            `yaml:"name" config:"required"`
	Namespace                  string            `yaml:"namespace"`
	Labels                     map[string]string `yaml:"labels"`
	Annotations                map[string]string `yaml:"annotations"`
	GenerateName               yaml.Node         `yaml:"generateName"`
	UID                        yaml.Node         `yaml:"uid"`
	ResourceVersion            yaml.Node         `yaml:"resourceVersion"`
	Generation                 yaml.Node         `yaml:"generation"`
	CreationTimestamp          yaml.Node         `yaml:"creationTimestamp"`
	DeletionTimestamp          yaml.Node         `yaml:"deletionTimestamp"`
	DeletionGracePeriodSeconds yaml.Node         `yaml:"deletionGracePeriodSeconds"`
	OwnerReferences            yaml.Node         `yaml:"ownerReferences"`
	Finalizers                 yaml.Node         `yaml:"finalizers"`
	ManagedFields              yaml.Node         `yaml:"managedFields"`
	SelfLink                   yaml.Node         `yaml:"selfLink"`
}

// slothDialect is how one of Sloth's two forms names its fields, for
// errors that point into the file.
type slothDialect struct {
	prefix string // of the spec's fields: "" or "spec."
	camel  bool
}

// path writes a prometheus/v1 field path in the dialect.
func (dl slothDialect) path(p string) string {
	if dl.camel {
		p = strings.NewReplacer("error_query", "errorQuery", "total_query", "totalQuery", "page_alert", "pageAlert",
			"ticket_alert", "ticketAlert", "slo_plugins", "sloPlugins").Replace(p)
	}
	return dl.prefix + p
}

// slothPaths maps relia field paths to Sloth's, for errors.
var slothPaths = []struct{ relia, sloth string }{
	{"metadata.name", "name"},
	{"metadata.labels", "labels"},
	{"spec.objective", "objective"},
	{"spec.description", "description"},
	{"spec.sli.availability.errorQuery", "sli.events.error_query"},
	{"spec.sli.availability.totalQuery", "sli.events.total_query"},
	{"spec.sli", "sli"},
	{"spec.alerting.page", "alerting.page_alert"},
	{"spec.alerting.ticket", "alerting.ticket_alert"},
	{"spec.alerting", "alerting"},
}

// checkPlugins refuses a chain of Sloth SLO plugins at path, naming the
// plugins relia cannot run.
func checkPlugins(d config.Document, path string, p *slothPlugins) error {
	if p == nil {
		return nil
	}
	var ids []string
	for _, c := range p.Chain {
		if c.ID != alertForPlugin {
			ids = append(ids, c.ID)
		}
	}
	switch {
	case p.OverridePrevious:
		return d.Errorf(path+".overridePrevious", "replaces sloth's own rule generation with plugins: sloth plugins are Go code relia cannot run")
	case len(ids) > 0:
		return d.Errorf(path, "sloth plugins are Go code relia cannot run (%s); remove them (relia does what %s does: page_alert.for and ticket_alert.for)",
			strings.Join(ids, ", "), alertForPlugin)
	}
	return nil
}

// importSloth turns a Sloth prometheus/v1 spec into relia SLOs.
func importSloth(d config.Document) ([]*SLO, error) {
	var spec slothSpec
	err := d.Decode(&spec)
	return convertSloth(d, spec, slothDialect{}, err)
}

// importSlothK8s turns Sloth's Kubernetes PrometheusServiceLevel into
// relia SLOs, as importSloth does its prometheus/v1 twin. The rules a
// Sloth controller would write into a PrometheusRule are what relia slo
// generate --format prometheusrule writes.
func importSlothK8s(d config.Document) ([]*SLO, error) {
	switch d.Kind {
	case KindSlothK8s:
	case "AlertWindows":
		return nil, d.Errorf("kind", "AlertWindows sets the alert windows of sloth's command line, not SLOs; relia gives each SLO its windows (spec.alerting.page.windows and ticket.windows in relia's kind: SLO, which relia slo import writes)")
	default:
		return nil, d.Errorf("kind", "%q is not a Sloth kind relia reads (want %s)", d.Kind, KindSlothK8s)
	}
	var k slothK8s
	decodeErr := d.Decode(&k)
	spec := slothSpec{Service: k.Spec.Service, Labels: k.Spec.Labels, SLOPlugins: k.Spec.SLOPlugins}
	for _, in := range k.Spec.SLOs {
		out := slothSLO{Name: in.Name, Objective: in.Objective, Description: in.Description, Labels: in.Labels, Plugins: in.Plugins,
			SLI: slothSLI{Raw: in.SLI.Raw, Plugin: in.SLI.Plugin},
			Alerting: slothAlerting{Name: in.Alerting.Name, Labels: in.Alerting.Labels, Annotations: in.Alerting.Annotations,
				PageAlert: in.Alerting.PageAlert, TicketAlert: in.Alerting.TicketAlert}}
		if e := in.SLI.Events; e != nil {
			out.SLI.Events = &slothEvents{ErrorQuery: e.ErrorQuery, TotalQuery: e.TotalQuery}
		}
		spec.SLOs = append(spec.SLOs, out)
	}
	slos, err := convertSloth(d, spec, slothDialect{prefix: "spec.", camel: true}, decodeErr)
	for _, s := range slos {
		s.k8s = &k8sObject{Name: k.Metadata.Name, Namespace: k.Metadata.Namespace, Labels: k.Metadata.Labels}
	}
	return slos, err
}

// convertSloth turns a Sloth spec, in either form, into relia SLOs.
// Sloth's period is a command-line flag, not part of the spec: the SLOs
// get relia's default, 30 days, like Sloth's own default. Raw
// error-ratio SLIs and plugins cannot be imported: relia computes long
// windows from event rates, which a ratio query does not give, and
// plugins are Go code. When decoding failed (decodeErr), the spec holds
// what could be decoded, and only its refusals are added to the error,
// so that a file is not refused for a field while the reason it cannot
// be imported at all goes unsaid.
func convertSloth(d config.Document, spec slothSpec, dl slothDialect, decodeErr error) ([]*SLO, error) {
	errs := []error{decodeErr}
	if err := checkPlugins(d, dl.path("slo_plugins"), spec.SLOPlugins); err != nil {
		errs = append(errs, err)
	}
	var slos []*SLO
	for i, in := range spec.SLOs {
		base := fmt.Sprintf("slos[%d]", i)
		events := dl.path("error_query")[len(dl.prefix):] + " and " + dl.path("total_query")[len(dl.prefix):]
		if err := checkPlugins(d, dl.path(base+".plugins"), in.Plugins); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case in.SLI.Plugin.Kind != 0:
			errs = append(errs, d.Errorf(dl.path(base+".sli.plugin"), "sloth SLI plugins are Go code relia cannot run; write the SLI as events (%s)", events))
			continue
		case in.SLI.Raw.Kind != 0:
			errs = append(errs, d.Errorf(dl.path(base+".sli.raw"), "a raw error-ratio SLI cannot be imported: relia sums events over long windows rather than averaging ratios; rewrite it as events (%s)", events))
			continue
		case decodeErr != nil:
			continue
		}
		s := &SLO{src: source{doc: d, path: func(p string) string {
			if p == "spec.service" {
				return dl.path("service")
			}
			for _, m := range slothPaths {
				if rest, ok := strings.CutPrefix(p, m.relia); ok {
					return dl.path(base + "." + m.sloth + rest)
				}
			}
			return dl.path(base)
		}}}
		// Sloth's objective is a percentage; moving the decimal point in
		// its text keeps 99.9 exactly 0.999.
		obj, err := config.ParseRatio(strconv.FormatFloat(in.Objective, 'f', -1, 64) + "%")
		if err != nil {
			errs = append(errs, d.Errorf(dl.path(base+".objective"), "%v is not a percentage in (0, 100]", in.Objective))
			continue
		}
		labels := maps.Clone(spec.Labels)
		if labels == nil && len(in.Labels) > 0 {
			labels = map[string]string{}
		}
		maps.Copy(labels, in.Labels)
		s.Metadata = Metadata{Name: in.Name, Labels: labels}
		s.Spec = Spec{
			Service:     spec.Service,
			Description: in.Description,
			Objective:   obj,
			SLI: SLI{Availability: &Availability{
				ErrorQuery: strings.TrimSpace(in.SLI.Events.ErrorQuery),
				TotalQuery: strings.TrimSpace(in.SLI.Events.TotalQuery),
			}},
			Alerting: Alerting{
				Name:        in.Alerting.Name,
				Labels:      in.Alerting.Labels,
				Annotations: in.Alerting.Annotations,
				Page:        in.Alerting.PageAlert.severity(),
				Ticket:      in.Alerting.TicketAlert.severity(),
			},
		}
		slos = append(slos, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slos, nil
}

// severity is the alert as relia configures it.
func (a slothAlert) severity() Severity {
	return Severity{Disabled: a.Disable, Labels: a.Labels, Annotations: a.Annotations, For: a.For}
}
