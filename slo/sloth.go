package slo

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/relia-dev/relia/internal/config"
)

// slothSpec is Sloth's prometheus/v1 spec: one service, several SLOs.
type slothSpec struct {
	Service string            `yaml:"service" config:"required"`
	Labels  map[string]string `yaml:"labels"`
	SLOs    []slothSLO        `yaml:"slos" config:"required"`
}

type slothSLO struct {
	Name        string            `yaml:"name" config:"required"`
	Objective   float64           `yaml:"objective" config:"required"` // a percentage
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	SLI         slothSLI          `yaml:"sli" config:"required"`
	Alerting    slothAlerting     `yaml:"alerting"`
}

type slothSLI struct {
	Events *struct {
		ErrorQuery string `yaml:"error_query" config:"required"`
		TotalQuery string `yaml:"total_query" config:"required"`
	} `yaml:"events"`
	Raw *struct {
		ErrorRatioQuery string `yaml:"error_ratio_query" config:"required"`
	} `yaml:"raw"`
	Plugin *struct {
		ID      string            `yaml:"id" config:"required"`
		Options map[string]string `yaml:"options"`
	} `yaml:"plugin"`
}

func (slothSLI) OneOfNoun() string { return "SLI kind" }

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

// importSloth turns a Sloth prometheus/v1 spec into relia SLOs. Sloth's
// period is a command-line flag, not part of the spec: the SLOs get
// relia's default, 30 days, like Sloth's own default. Raw error-ratio
// and plugin SLIs cannot be imported: relia computes long windows from
// event rates, which a ratio query does not give.
func importSloth(d config.Document) ([]*SLO, error) {
	var spec slothSpec
	if err := d.Decode(&spec); err != nil {
		return nil, err
	}
	var slos []*SLO
	var errs []error
	for i, in := range spec.SLOs {
		base := fmt.Sprintf("slos[%d]", i)
		s := &SLO{src: source{doc: d, path: func(p string) string {
			if p == "spec.service" {
				return "service"
			}
			for _, m := range slothPaths {
				if rest, ok := strings.CutPrefix(p, m.relia); ok {
					return base + "." + m.sloth + rest
				}
			}
			return base
		}}}
		switch {
		case in.SLI.Raw != nil:
			errs = append(errs, d.Errorf(base+".sli.raw", "a raw error-ratio SLI cannot be imported: relia sums events over long windows rather than averaging ratios; rewrite it as events (error_query and total_query)"))
			continue
		case in.SLI.Plugin != nil:
			errs = append(errs, d.Errorf(base+".sli.plugin", "Sloth SLI plugins cannot be imported; rewrite the SLI as events (error_query and total_query)"))
			continue
		}
		// Sloth's objective is a percentage; moving the decimal point in
		// its text keeps 99.9 exactly 0.999.
		obj, err := config.ParseRatio(strconv.FormatFloat(in.Objective, 'f', -1, 64) + "%")
		if err != nil {
			errs = append(errs, d.Errorf(base+".objective", "%v is not a percentage in (0, 100]", in.Objective))
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
				Page:        Severity{Disabled: in.Alerting.PageAlert.Disable, Labels: in.Alerting.PageAlert.Labels, Annotations: in.Alerting.PageAlert.Annotations},
				Ticket:      Severity{Disabled: in.Alerting.TicketAlert.Disable, Labels: in.Alerting.TicketAlert.Labels, Annotations: in.Alerting.TicketAlert.Annotations},
			},
		}
		slos = append(slos, s)
	}
	return slos, errors.Join(errs...)
}
