package slo

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// Dashboard returns a Grafana dashboard (JSON model, for import or
// provisioning) over the series the rules for slos record: per SLO, the
// SLI and the budget remaining over the period, the current burn rate,
// the burn rate over each alert window against its threshold, the SLI
// over time, and the SLO's alerts. Its Prometheus data source is a
// dashboard variable, chosen on import.
func Dashboard(title string, slos []*SLO) ([]byte, error) {
	var panels []map[string]any
	y := 0
	id := 1
	next := func() int { id++; return id - 1 }
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	target := func(expr, legend, ref string) map[string]any {
		return map[string]any{"datasource": ds, "expr": expr, "legendFormat": legend, "refId": ref}
	}
	for _, s := range slos {
		sel := s.selector()
		period := config.FormatDuration(s.Period())
		budget := formatFloat(s.ErrorBudget())
		panels = append(panels, map[string]any{
			"type": "row", "id": next(), "title": fmt.Sprintf("%s / %s — %v over %s", s.Spec.Service, s.Metadata.Name, s.Spec.Objective, period),
			"collapsed": false, "gridPos": grid(0, y, 24, 1), "panels": []any{},
		})
		y++
		stat := func(x int, title, expr, unit string, thresholds []any) map[string]any {
			return map[string]any{
				"type": "stat", "id": next(), "title": title, "datasource": ds, "gridPos": grid(x, y, 6, 5),
				"targets": []any{target(expr, title, "A")},
				"fieldConfig": map[string]any{"defaults": map[string]any{
					"unit": unit, "decimals": 3,
					"thresholds": map[string]any{"mode": "absolute", "steps": thresholds},
				}},
				"options": map[string]any{"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}}, "colorMode": "background"},
			}
		}
		step := func(color string, value any) map[string]any { return map[string]any{"color": color, "value": value} }
		panels = append(panels,
			stat(0, "SLI over "+period, "1 - "+ratioMetric+period+sel, "percentunit",
				[]any{step("red", nil), step("green", float64(s.Spec.Objective))}),
			stat(6, "Error budget remaining", budgetRemainingMetric+sel, "percentunit",
				[]any{step("red", nil), step("orange", 0), step("green", 0.25)}),
			stat(12, "Burn rate (5m)", currentBurnMetric+sel, "x",
				[]any{step("green", nil), step("orange", 1), step("red", 6)}),
			stat(18, "Budget as downtime", fmt.Sprintf("vector(%s)", formatFloat(BudgetTime(float64(s.Spec.Objective), s.Period()).Seconds())), "s",
				[]any{step("blue", nil)}),
		)
		y += 5
		var burnTargets []any
		for _, w := range s.windows() {
			if w == s.Period() {
				continue
			}
			ws := config.FormatDuration(w)
			burnTargets = append(burnTargets, target(fmt.Sprintf("%s%s%s / %s", ratioMetric, ws, sel, budget), "burn rate "+ws, "W"+ws))
		}
		var thresholds []any
		thresholds = append(thresholds, step("green", nil))
		for _, a := range s.Alerts() {
			for _, w := range a.Windows {
				thresholds = append(thresholds, step(map[string]string{Page: "red", Ticket: "orange"}[a.Severity], w.BurnRate))
			}
		}
		panels = append(panels, map[string]any{
			"type": "timeseries", "id": next(), "title": "Burn rate by window (alert thresholds shaded)", "datasource": ds,
			"gridPos": grid(0, y, 12, 8), "targets": burnTargets,
			"fieldConfig": map[string]any{"defaults": map[string]any{
				"unit": "x", "custom": map[string]any{"thresholdsStyle": map[string]any{"mode": "line"}},
				"thresholds": map[string]any{"mode": "absolute", "steps": thresholds},
			}},
		}, map[string]any{
			"type": "timeseries", "id": next(), "title": "SLI", "datasource": ds, "gridPos": grid(12, y, 12, 8),
			"targets": []any{
				target("1 - "+ratioMetric+config.FormatDuration(s.baseWindow())+sel, "SLI ("+config.FormatDuration(s.baseWindow())+")", "A"),
				target("1 - "+ratioMetric+period+sel, "SLI ("+period+")", "B"),
				target(objectiveMetric+sel, "objective", "C"),
			},
			"fieldConfig": map[string]any{"defaults": map[string]any{"unit": "percentunit", "max": 1}},
		})
		y += 8
		panels = append(panels, map[string]any{
			"type": "state-timeline", "id": next(), "title": "Alerts", "datasource": ds, "gridPos": grid(0, y, 24, 4),
			"targets":     []any{target(fmt.Sprintf(`max by (sloth_severity, alertstate) (ALERTS%s)`, sel), "{{sloth_severity}} {{alertstate}}", "A")},
			"fieldConfig": map[string]any{"defaults": map[string]any{"color": map[string]any{"mode": "fixed", "fixedColor": "red"}}},
		})
		y += 4
	}
	var ids []string
	for _, s := range slos {
		ids = append(ids, s.ID())
	}
	h := fnv.New64a()
	h.Write([]byte(strings.Join(ids, ",")))
	dash := map[string]any{
		"title":         title,
		"uid":           fmt.Sprintf("relia-slo-%x", h.Sum64())[:20],
		"tags":          []string{"relia", "slo"},
		"schemaVersion": 39,
		"editable":      true,
		"refresh":       "1m",
		"time":          map[string]any{"from": "now-" + config.FormatDuration(min(maxPeriod(slos), 7*config.Day)), "to": "now"},
		"templating": map[string]any{"list": []any{map[string]any{
			"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
		}}},
		"annotations": map[string]any{"list": []any{}},
		"panels":      panels,
	}
	out, err := json.MarshalIndent(dash, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("writing dashboard: %w", err)
	}
	return append(out, '\n'), nil
}

func grid(x, y, w, h int) map[string]int { return map[string]int{"x": x, "y": y, "w": w, "h": h} }

func maxPeriod(slos []*SLO) time.Duration {
	var d time.Duration
	for _, s := range slos {
		d = max(d, s.Period())
	}
	return d
}
