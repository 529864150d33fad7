package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/slo"
)

func init() { register(newSLOCmd) }

func newSLOCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "slo",
		Short: "SLOs: validate specs, generate tested Prometheus rules and dashboards, read live status",
		Long: `relia slo works on SLO specs: relia's own (kind: SLO, version: relia/v1),
OpenSLO v1 (SLO, SLI, AlertPolicy, AlertCondition), Sloth's prometheus/v1
and Sloth's Kubernetes PrometheusServiceLevel (sloth.slok.dev/v1), told
apart by their version.

  relia slo validate checkout.yaml
  relia slo generate checkout.yaml --out rules/checkout.yaml --tests rules/
  promtool test rules rules/*.test.yaml
  relia slo status --prometheus http://prometheus:9090`,
	}
	cmd.AddCommand(newSLOValidateCmd(), newSLOGenerateCmd(), newSLODashboardCmd(), newSLOStatusCmd(),
		newSLOImportCmd(), newSLOSchemaCmd())
	return cmd
}

// readSLOs reads spec files; a spec that does not load is the user's
// input being wrong.
func readSLOs(paths []string) ([]*slo.SLO, error) {
	slos, err := slo.ReadFiles(paths...)
	if err != nil {
		return nil, badInput(err)
	}
	return slos, nil
}

// promClient makes a Prometheus client from --prometheus.
func promClient(url string) (*slo.PromClient, error) {
	if url == "" {
		return nil, badInput(errors.New("--prometheus is required"))
	}
	c, err := slo.NewPromClient(url, nil)
	if err != nil {
		return nil, badInput(err)
	}
	return c, nil
}

// writeOut writes data to path, or to stdout when path is empty or "-".
func writeOut(cmd *cobra.Command, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return runtimeErr(fmt.Errorf("writing %s: %w", path, err))
	}
	return nil
}

func newSLOValidateCmd() *cobra.Command {
	var prom string
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check SLO specs as generate would; with --prometheus, check latency thresholds against the live buckets",
		Long: `Check SLO specs with every check relia slo generate makes, and print a line
per SLO: a spec validate passes is one generate accepts. Every problem is
reported at its file:line:col. A latency threshold must be a bucket bound
of its histogram: the bounds the spec lists, or relia's defaults for the
histograms relia exports. With --prometheus, the threshold of each
classic-histogram latency SLI is also checked against the bucket bounds
the server has for the metric.

An SLO judged only in relia runs (outcome classes, or a latency SLI
without a metric) has no Prometheus rules, so validate refuses it as
generate does; relia validate checks it for runs.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			slos, err := readSLOs(args)
			if err != nil {
				return err
			}
			var errs []error
			if _, _, err := slo.Generate(slos, "rules.yaml"); err != nil {
				errs = append(errs, err)
			}
			if prom != "" {
				c, err := promClient(prom)
				if err != nil {
					return err
				}
				for _, s := range slos {
					if err := s.CheckBuckets(cmd.Context(), c); err != nil {
						var ce *config.Error
						if !errors.As(err, &ce) {
							return runtimeErr(err)
						}
						errs = append(errs, err)
					}
				}
			}
			if len(errs) > 0 {
				return badInput(errors.Join(errs...))
			}
			out := cmd.OutOrStdout()
			for _, s := range slos {
				fmt.Fprintf(out, "ok  %s  %s\n", s.ID(), describeSLO(s))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prom, "prometheus", "", "Prometheus server to read histogram buckets from (http://host:9090)")
	return cmd
}

// describeSLO says in one line what an SLO promises and when it alerts.
func describeSLO(s *slo.SLO) string {
	kind := "availability"
	if s.Spec.SLI.Latency != nil {
		kind = "latency <= " + config.FormatDuration(s.Spec.SLI.Latency.Threshold)
	}
	parts := []string{fmt.Sprintf("%v over %s, %s", s.Spec.Objective, config.FormatDuration(s.Period()), kind)}
	for _, a := range s.Alerts() {
		var ws []string
		for _, w := range a.Windows {
			ws = append(ws, fmt.Sprintf("%gx/%s+%s", w.BurnRate, config.FormatDuration(w.Long), config.FormatDuration(w.Short)))
		}
		parts = append(parts, a.Severity+" "+strings.Join(ws, " "))
	}
	return strings.Join(parts, "; ")
}

// Output formats of relia slo generate.
const (
	formatRules          = "rules"
	formatPrometheusRule = "prometheusrule"
)

func newSLOGenerateCmd() *cobra.Command {
	var out, tests, format string
	var meta slo.ObjectMeta
	cmd := &cobra.Command{
		Use:   "generate FILE...",
		Short: "Write Prometheus recording and alerting rules for SLOs, and promtool tests for them",
		Long: `Write the Prometheus rules for SLOs: event rates per window, error ratios,
budget and burn-rate series (Sloth's names), and page and ticket alerts.

--format rules (the default) writes a Prometheus rule file (rule_files:);
--format prometheusrule writes a Prometheus Operator PrometheusRule
(monitoring.coreos.com/v1) holding the same groups, named after the Sloth
PrometheusServiceLevel the SLOs came from or their services, unless
--name, --namespace and --label say otherwise.

--tests DIR also writes promtool unit tests for each SLO into DIR; run
them with promtool test rules DIR/*.test.yaml. They read the rule file
--out (so --format rules needs --out), or, for a PrometheusRule, a rule
file of its groups written beside them as DIR/NAME.rules.yaml.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != formatRules && format != formatPrometheusRule {
				return badInput(fmt.Errorf("--format must be %s or %s, got %q", formatRules, formatPrometheusRule, format))
			}
			if format == formatRules && (meta.Name != "" || meta.Namespace != "" || len(meta.Labels) > 0) {
				return badInput(fmt.Errorf("--name, --namespace and --label name a PrometheusRule: add --format %s", formatPrometheusRule))
			}
			if tests != "" && format == formatRules && (out == "" || out == "-") {
				return badInput(errors.New("--tests needs --out: the tests read the rules from a file"))
			}
			slos, err := readSLOs(args)
			if err != nil {
				return err
			}
			rules, _, err := slo.Generate(slos, "")
			if err != nil {
				return badInput(err)
			}
			var names []string
			for _, a := range args {
				names = append(names, filepath.Base(a))
			}
			header := "Generated by relia slo generate from " + strings.Join(names, ", ") + ". DO NOT EDIT."
			rulesData, err := rules.Marshal(header)
			if err != nil {
				return runtimeErr(err)
			}
			data, testRules := rulesData, out
			if format == formatPrometheusRule {
				pr, err := slo.NewPrometheusRule(slos, rules, meta)
				if err != nil {
					return badInput(err)
				}
				if data, err = pr.Marshal(header); err != nil {
					return runtimeErr(err)
				}
				testRules = filepath.Join(tests, pr.Metadata.Name+".rules.yaml")
			}
			if err := writeOut(cmd, out, data); err != nil {
				return err
			}
			if tests == "" {
				return nil
			}
			if err := os.MkdirAll(tests, 0o755); err != nil {
				return runtimeErr(err)
			}
			if format == formatPrometheusRule {
				if err := writeOut(cmd, testRules, rulesData); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "relia slo: wrote %s, the PrometheusRule's groups as a rule file for the tests\n", testRules)
			}
			absOut, _ := filepath.Abs(testRules)
			absTests, _ := filepath.Abs(tests)
			rel, err := filepath.Rel(absTests, absOut)
			if err != nil {
				return badInput(fmt.Errorf("--tests %s cannot name --out %s relative to it: %w", tests, out, err))
			}
			_, files, err := slo.Generate(slos, filepath.ToSlash(rel))
			if err != nil {
				return runtimeErr(err)
			}
			for _, f := range files {
				data, err := f.Marshal()
				if err != nil {
					return runtimeErr(err)
				}
				path := filepath.Join(tests, f.Name)
				if err := writeOut(cmd, path, data); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "relia slo: wrote %s\n", path)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the rules to (default stdout)")
	cmd.Flags().StringVar(&tests, "tests", "", "directory to write promtool unit tests into")
	cmd.Flags().StringVar(&format, "format", formatRules, "rules (a Prometheus rule file) or prometheusrule (a Prometheus Operator PrometheusRule)")
	cmd.Flags().StringVar(&meta.Name, "name", "", "the PrometheusRule's name (default: the Sloth resource's, or <services>-slos)")
	cmd.Flags().StringVar(&meta.Namespace, "namespace", "", "the PrometheusRule's namespace (default: the Sloth resource's, or none)")
	cmd.Flags().StringToStringVar(&meta.Labels, "label", nil, "the PrometheusRule's labels, for the operator's ruleSelector: --label role=alert-rules (default: the Sloth resource's)")
	return cmd
}

func newSLODashboardCmd() *cobra.Command {
	var out, title string
	cmd := &cobra.Command{
		Use:   "dashboard FILE...",
		Short: "Write a Grafana dashboard for SLOs' generated rules",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			slos, err := readSLOs(args)
			if err != nil {
				return err
			}
			if title == "" {
				var services []string
				for _, s := range slos {
					if !slices.Contains(services, s.Spec.Service) {
						services = append(services, s.Spec.Service)
					}
				}
				title = "SLOs: " + strings.Join(services, ", ")
			}
			data, err := slo.Dashboard(title, slos)
			if err != nil {
				return runtimeErr(err)
			}
			return writeOut(cmd, out, data)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write the dashboard JSON to (default stdout)")
	cmd.Flags().StringVar(&title, "title", "", "dashboard title (default: SLOs: <services>)")
	return cmd
}

func newSLOStatusCmd() *cobra.Command {
	var prom, output string
	cmd := &cobra.Command{
		Use:   "status --prometheus URL [FILE...]",
		Short: "Show SLIs, error budgets, burn rates and alerts live from Prometheus",
		Long: `Read each SLO's SLI over its period, the error budget remaining, the burn
rate over every window and the pending and firing alerts from the rules a
Prometheus server runs (relia's or Sloth's). With FILEs, only their SLOs,
which must be there. Exits 1 when an SLO has overspent its budget.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return badInput(fmt.Errorf("-o must be table or json, got %q", output))
			}
			c, err := promClient(prom)
			if err != nil {
				return err
			}
			var ids []string
			if len(args) > 0 {
				slos, err := readSLOs(args)
				if err != nil {
					return err
				}
				for _, s := range slos {
					ids = append(ids, s.ID())
				}
			}
			st, err := slo.FetchStatus(cmd.Context(), c, ids...)
			if err != nil {
				return runtimeErr(err)
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return runtimeErr(err)
				}
			} else if err := printStatus(cmd.OutOrStdout(), st); err != nil {
				return runtimeErr(err)
			}
			var missed []string
			for _, s := range st {
				if !s.Met() {
					missed = append(missed, s.ID)
				}
			}
			if len(missed) > 0 {
				return &exitError{code: exitFailed, err: fmt.Errorf("error budget overspent: %s", strings.Join(missed, ", "))}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prom, "prometheus", "", "Prometheus server running the SLO rules (http://host:9090)")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// printStatus writes SLO statuses as a table.
func printStatus(w io.Writer, st []slo.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SLO\tOBJECTIVE\tPERIOD\tSLI\tBUDGET LEFT\tBURN RATES\tALERTS")
	pct := func(v *float64) string {
		if v == nil {
			return "no data"
		}
		return fmt.Sprintf("%.3f%%", *v*100)
	}
	for _, s := range st {
		windows := make([]string, 0, len(s.BurnRates))
		for w := range s.BurnRates {
			windows = append(windows, w)
		}
		slices.SortFunc(windows, func(a, b string) int {
			da, _ := config.ParseDuration(a)
			db, _ := config.ParseDuration(b)
			return cmp.Compare(da, db)
		})
		var burns []string
		for _, w := range windows {
			burns = append(burns, fmt.Sprintf("%s %.2fx", w, s.BurnRates[w]))
		}
		alerts := "-"
		if len(s.Alerts) > 0 {
			var as []string
			for _, a := range s.Alerts {
				as = append(as, fmt.Sprintf("%s %s", a.Severity, a.State))
			}
			alerts = strings.Join(as, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, config.Ratio(s.Objective), s.Period, pct(s.SLI), pct(s.BudgetRemaining),
			strings.Join(burns, ", "), alerts)
	}
	return tw.Flush()
}

func newSLOImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE...",
		Short: "Convert OpenSLO v1 and Sloth specs into relia SLO specs",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			slos, err := readSLOs(args)
			if err != nil {
				return err
			}
			data, err := slo.Encode(slos)
			if err != nil {
				return runtimeErr(err)
			}
			return writeOut(cmd, "", data)
		},
	}
}

func newSLOSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of SLO specs, for editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := slo.JSONSchema()
			if err != nil {
				return runtimeErr(err)
			}
			return writeOut(cmd, "", data)
		},
	}
}
