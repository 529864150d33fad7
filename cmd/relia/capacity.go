package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/capacity"
	"github.com/relia-dev/relia/capacity/autoscale"
	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/load"
)

func init() { register(newCapacityCmd) }

func newCapacityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "capacity",
		Short: "Measure the knee, fit the USL, plan replicas, write autoscaler manifests and simulate a spike",
		Long: `relia capacity joins the steps of capacity planning:

  relia capacity measure URL --slo slo.yaml --out m.json     # stepped load, knee, USL fit
  relia capacity measure URL --ramp 2m --concurrency 1,32 --slo slo.yaml   # one ramped run
  relia capacity plan --measurement m.json --peak 1000 --name shop --out k8s.yaml
  relia capacity plan --capacity 120 --calls-db calls.db --route orders --horizon 14d
  relia capacity simulate --measurement m.json --black-friday --slo slo.yaml --html report.html
  relia capacity simulate --measurement m.json --calls-db calls.db --day 2026-11-27 --slo slo.yaml

and relia run proves the plan: a command service with an autoscale section
is scaled by the same autoscaler rules behind a relia gateway; pass its
output folder to simulate --proved to see the run beside the prediction.
Guide: docs/capacity.md.`,
	}
	cmd.AddCommand(newCapacityMeasureCmd(), newCapacityPlanCmd(), newCapacitySimulateCmd())
	return cmd
}

type measureFlags struct {
	slos        []string
	concurrency []int
	step        time.Duration
	warmup      time.Duration
	ramp        time.Duration
	stopAfter   int
	instances   int
	pid         int
	out, html   string
	format      string
}

func newCapacityMeasureCmd() *cobra.Command {
	var f measureFlags
	cmd := &cobra.Command{
		Use:   "measure URL | SCENARIO.yaml | RESULTS.json | JOURNAL.json",
		Short: "Stepped load judged by SLOs: the knee, throughput and latency per concurrency, a USL fit and Little's law",
		Long: `relia capacity measure sends a stepped closed-model load (one step per
--concurrency, each --step long, no think time) to a URL or to the requests
of a kind: Scenario file, and judges each step after its --warmup by the
SLOs. With --ramp D the load is one closed-model run instead, whose
requests in flight rise from the lowest --concurrency to the highest over
D: each count the ramp holds for 3s or more is a step (judged after its
first second), and a faster ramp is judged in slices of --step, each at
its mean concurrency. It reads the steps of a saved run instead when given a results file
(relia load --out, a stress preset or a stepped closed model) or an
experiment's journal.json (its closed-model phases).

It reports the knee (the step with the most throughput that met every
SLO, per instance), throughput and latency at every concurrency, Little's
law (N = X·R) per step, and the Universal Scalability Law fitted to the
steps with 95% intervals and leave-one-out errors; a fit that explains the
data poorly says so.

Exit codes: 0 a knee was found, 1 no step met the SLOs, 2 bad input,
4 runtime error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runMeasure(cmd, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.slos, "slo", nil, "SLO file judging each step (repeatable)")
	fl.IntSliceVar(&f.concurrency, "concurrency", nil, "requests in flight at each step (default 1,2,4,8,16,32,64)")
	fl.DurationVar(&f.step, "step", capacity.DefaultStepDuration, "length of each step")
	fl.DurationVar(&f.warmup, "warmup", 0, "start of each step left unjudged (default a fifth of the step, at least 1s)")
	fl.DurationVar(&f.ramp, "ramp", 0, "one run whose requests in flight rise from the lowest --concurrency to the highest over this long, judged at each count it holds 3s or more, else in slices of --step")
	fl.IntVar(&f.stopAfter, "stop-after", 2, "stop after this many steps in a row missed an SLO (0: never)")
	fl.IntVar(&f.instances, "instances", 1, "replicas serving the target: the knee and the model are per instance")
	fl.IntVar(&f.pid, "pid", 0, "process to measure CPU per request and memory of (Linux)")
	fl.StringVar(&f.out, "out", "", "write the measurement (JSON, for plan and simulate) to this file")
	fl.StringVar(&f.html, "html", "", "write an HTML report to this file")
	fl.StringVarP(&f.format, "output", "o", "table", "stdout format: table or json")
	return cmd
}

// fileSchema returns the "schema" field of a JSON file.
func fileSchema(path string) (string, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	var head struct {
		Schema string `json:"schema"`
	}
	_ = json.Unmarshal(data, &head)
	return head.Schema, data, nil
}

func runMeasure(cmd *cobra.Command, target string, f *measureFlags) error {
	if f.format != "table" && f.format != "json" {
		return badInput(fmt.Errorf("-o %q: want table or json", f.format))
	}
	if f.instances < 1 {
		return badInput(fmt.Errorf("--instances %d: want at least 1", f.instances))
	}
	for _, name := range []string{"warmup", "stop-after"} {
		if f.ramp != 0 && cmd.Flags().Changed(name) {
			return badInput(fmt.Errorf("--%s does not apply to --ramp: a ramp runs to its end, each count judged after its first second", name))
		}
	}
	slos, err := readSLOs(f.slos)
	if len(f.slos) > 0 && err != nil {
		return err
	}
	var m *capacity.Measurement
	switch {
	case strings.HasSuffix(target, ".json"):
		schema, data, err := fileSchema(target)
		if err != nil {
			return badInput(err)
		}
		switch schema {
		case load.ResultSchema:
			var r load.Result
			if err := json.Unmarshal(data, &r); err != nil {
				return badInput(fmt.Errorf("%s: %w", target, err))
			}
			m, err = capacity.FromResult(&r, target, slos, f.instances)
		case experiment.JournalSchema:
			j, jerr := experiment.DecodeJournal(bytes.NewReader(data))
			if jerr != nil {
				return badInput(fmt.Errorf("%s: %w", target, jerr))
			}
			m, err = capacity.FromJournal(j, target, f.instances)
		default:
			return badInput(fmt.Errorf("%s: schema %q is neither a load result (%s) nor a journal (%s)", target, schema, load.ResultSchema, experiment.JournalSchema))
		}
		if err != nil {
			return badInput(fmt.Errorf("%s: %w", target, err))
		}
	default:
		lf := &loadFlags{vus: 1, duration: time.Second}
		sc, err := scenarioFor(target, lf)
		if err != nil {
			return badInput(err)
		}
		o := capacity.MeasureOptions{Concurrency: f.concurrency, StepDuration: f.step, Warmup: f.warmup, SLOs: slos,
			StopAfter: f.stopAfter, Instances: f.instances, Ramp: f.ramp}
		if f.stopAfter == 0 {
			o.StopAfter = -1
		}
		if f.pid > 0 {
			if o.Process, err = capacity.NewProcessSampler(f.pid); err != nil {
				return badInput(err)
			}
		}
		stderr := cmd.ErrOrStderr()
		o.Progress = func(s capacity.Step) {
			fmt.Fprintf(stderr, "concurrency %-5s %8.1f req/s  p99 %-10s SLOs %s\n", strconv.FormatFloat(s.Concurrency, 'f', -1, 64), s.Throughput, s.P99.Round(10*time.Microsecond), metOrMissed(s.Met))
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		m, err = capacity.Measure(ctx, sc, target, o)
		if err != nil {
			if ctx.Err() != nil {
				return &exitError{code: exitAborted, err: errors.New("interrupted")}
			}
			if strings.Contains(err.Error(), "step duration") || strings.Contains(err.Error(), "warm-up") || strings.Contains(err.Error(), "concurrency") ||
				strings.HasPrefix(err.Error(), "ramp ") {
				return badInput(err)
			}
			return runtimeErr(err)
		}
	}
	if f.out != "" {
		data, err := json.Marshal(m)
		if err != nil {
			return runtimeErr(err)
		}
		if err := os.WriteFile(f.out, append(data, '\n'), 0o644); err != nil {
			return runtimeErr(fmt.Errorf("writing %s: %w", f.out, err))
		}
	}
	if f.html != "" {
		if err := writePage(f.html, capacity.ReportInput{Title: "Capacity of " + target, Measurement: m}); err != nil {
			return err
		}
	}
	if f.format == "json" {
		data, err := json.Marshal(m)
		if err != nil {
			return runtimeErr(err)
		}
		if _, err := cmd.OutOrStdout().Write(append(data, '\n')); err != nil {
			return runtimeErr(err)
		}
	} else {
		writeSteps(cmd.OutOrStdout(), m)
	}
	if m.KneeStep() == nil {
		return &exitError{code: exitFailed, err: errors.New("no step met every SLO")}
	}
	return nil
}

func metOrMissed(met bool) string {
	if met {
		return "met"
	}
	return "missed"
}

// writeSteps prints the measurement's table and verdict.
func writeSteps(w io.Writer, m *capacity.Measurement) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "concurrency\treq/s per instance\tUSL req/s\tp50\tp99\tX·R\tSLOs\t")
	for i, s := range m.Steps {
		model, little := "", "-"
		if m.Fit != nil {
			model = strconv.FormatFloat(m.Fit.Model.Throughput(s.Concurrency), 'f', 1, 64)
		}
		if s.LittleChecked {
			little = fmt.Sprintf("%.2f", s.Little)
		}
		mark := metOrMissed(s.Met)
		if i == m.Knee {
			mark += " (knee)"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", strconv.FormatFloat(s.Concurrency, 'f', -1, 64), s.Throughput/float64(m.Instances), model,
			s.P50.Round(10*time.Microsecond), s.P99.Round(10*time.Microsecond), little, mark)
	}
	tw.Flush()
	if f := m.Fit; f != nil {
		fmt.Fprintf(w, "\nUSL: %s\n", f.Parameters())
	}
	fmt.Fprintf(w, "\n%s\n", m.Verdict())
}

// writePage renders a capacity report to path.
func writePage(path string, in capacity.ReportInput) error {
	var b bytes.Buffer
	if err := in.Page().WriteHTML(&b); err != nil {
		return runtimeErr(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return runtimeErr(fmt.Errorf("writing %s: %w", path, err))
	}
	return nil
}

// planFlags are the flags plan and simulate share.
type planFlags struct {
	measurement           string
	fromModel             bool
	capacityRPS           float64
	currentReplicas       int
	currentRPS            float64
	peak, base            float64
	prometheus, query     string
	callsDB, horizon      string
	forecastPeak          string
	route                 string
	since                 time.Duration
	headroom, utilisation string
	spare, zones          int
	name, namespace       string
	metric                string
	cpuPerRequest         float64
	memory                string
	// day is simulate's --day: with callsDB, the curve is the traffic
	// the store recorded that day, and no forecast is made.
	day string
	// forecast is the call store's forecast, once read.
	forecast *storeForecast
}

// storeForecast reads the forecast of --calls-db once: plan and
// simulate's curve share it.
func (f *planFlags) storeForecast(ctx context.Context) (*storeForecast, error) {
	if f.forecast == nil {
		fc, err := forecastFromStore(ctx, f, time.Now())
		if err != nil {
			return nil, err
		}
		f.forecast = fc
	}
	return f.forecast, nil
}

func (f *planFlags) register(fl interface {
	BoolVar(*bool, string, bool, string)
	StringVar(*string, string, string, string)
	Float64Var(*float64, string, float64, string)
	IntVar(*int, string, int, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	fl.StringVar(&f.measurement, "measurement", "", "measurement file (relia capacity measure --out): the knee and the model")
	fl.BoolVar(&f.fromModel, "from-model", false, "with --measurement: plan from the USL fit's peak throughput instead of the measured knee")
	fl.Float64Var(&f.capacityRPS, "capacity", 0, "req/s one replica sustains within its SLOs, instead of a measurement")
	fl.IntVar(&f.currentReplicas, "current-replicas", 0, "with --current-rps: plan from today's load per replica (the spreadsheet's rule)")
	fl.Float64Var(&f.currentRPS, "current-rps", 0, "the request rate today's replicas carry")
	fl.Float64Var(&f.peak, "peak", 0, "request rate to plan for (req/s)")
	fl.Float64Var(&f.base, "base", 0, "request rate outside the peak (req/s), for minReplicas")
	fl.StringVar(&f.prometheus, "prometheus", "", "Prometheus URL: take the peak and base from a range query of the gateway's request rate")
	fl.StringVar(&f.query, "query", "", "PromQL of the request rate (default the gateway's, sum(rate(http_server_request_duration_seconds_count[1m])))")
	fl.DurationVar(&f.since, "since", 7*24*time.Hour, "with --prometheus: how far back the range query looks")
	fl.StringVar(&f.callsDB, "calls-db", "", "the call store (a SQLite file or a postgres:// URL): take the peak and base from a forecast of its hourly traffic (simulate replays the forecast, or the --day it recorded)")
	fl.StringVar(&f.horizon, "horizon", "14d", "with --calls-db: how far ahead the forecast looks")
	fl.StringVar(&f.forecastPeak, "forecast-peak", "upper", "with --calls-db: plan for (and simulate) the forecast's upper bound (95% interval) or its mean")
	fl.StringVar(&f.route, "route", "", "gateway route (http_route, the call store's route) whose requests count")
	fl.StringVar(&f.headroom, "headroom", "30%", "share added on top of the peak")
	fl.StringVar(&f.utilisation, "utilisation", "70%", "share of its capacity each replica is planned to run at")
	fl.IntVar(&f.spare, "spare", 0, "replicas that may fail at peak (1 for N+1)")
	fl.IntVar(&f.zones, "zones", 0, "zones the replicas spread over; plan for losing the largest")
	fl.StringVar(&f.name, "name", "app", "Deployment the manifests scale")
	fl.StringVar(&f.namespace, "namespace", "", "namespace of the manifests")
	fl.StringVar(&f.metric, "metric", capacity.MetricRequests, "what the HPA scales on: requests or cpu")
	fl.Float64Var(&f.cpuPerRequest, "cpu-per-request", 0, "CPU seconds per request (default the measurement's)")
	fl.StringVar(&f.memory, "memory", "", "resident memory of a replica, e.g. 128MiB (default the measurement's)")
}

// planned is a plan with what the manifests and the simulation need.
type planned struct {
	plan    *capacity.Plan
	m       *capacity.Measurement
	opts    capacity.ManifestOptions
	traffic capacity.Traffic // from Prometheus, when queried
}

// makePlan resolves the plan flags; curve, when not nil, supplies the
// peak and base when the flags do not, and curveName names it.
func makePlan(cmd *cobra.Command, f *planFlags, curve capacity.Traffic, curveName string) (*planned, error) {
	var in capacity.PlanInput
	out := &planned{}
	sources := 0
	if f.measurement != "" {
		sources++
		m, err := capacity.ReadMeasurement(f.measurement)
		if err != nil {
			return nil, badInput(err)
		}
		out.m = m
		if f.fromModel {
			if m.Fit == nil {
				return nil, badInput(fmt.Errorf("%s: no USL fit to plan from: %s", f.measurement, m.FitError))
			}
			n, x := m.Fit.Model.Peak()
			if math.IsInf(x, 1) {
				return nil, badInput(fmt.Errorf("%s: the USL fit scales without limit (σ and κ are 0): plan from the measured knee", f.measurement))
			}
			in.Capacity, in.CapacitySource = x, fmt.Sprintf("USL peak at concurrency %.1f, not judged by the SLOs", n)
			if k := m.KneeStep(); k != nil {
				out.opts.CPUPerRequest, out.opts.MemoryPerReplica = k.CPUPerRequest, k.Memory
			}
		} else if k := m.KneeStep(); k != nil {
			in.Capacity, in.CapacitySource = m.KneePerInstance, "measured knee at concurrency "+strconv.FormatFloat(k.Concurrency, 'f', -1, 64)
			out.opts.CPUPerRequest, out.opts.MemoryPerReplica = k.CPUPerRequest, k.Memory
		} else {
			return nil, badInput(fmt.Errorf("%s: no step met every SLO, so there is no capacity to plan with", f.measurement))
		}
	}
	if f.capacityRPS > 0 {
		sources++
		in.Capacity, in.CapacitySource = f.capacityRPS, "given"
	}
	if f.currentReplicas > 0 || f.currentRPS > 0 {
		sources++
		if f.currentReplicas <= 0 || f.currentRPS <= 0 {
			return nil, badInput(errors.New("--current-replicas and --current-rps go together"))
		}
		in.Capacity, in.CapacitySource = f.currentRPS/float64(f.currentReplicas), "today's load per replica"
		in.Utilisation = 1
	}
	if sources != 1 {
		return nil, badInput(errors.New("give one of --measurement, --capacity, or --current-replicas with --current-rps"))
	}
	hv, err := parseShare(f.headroom)
	if err != nil {
		return nil, badInput(fmt.Errorf("--headroom: %w", err))
	}
	in.Headroom = hv
	if hv == 0 {
		in.Headroom = -1 // none, not the default
	}
	if in.Utilisation == 0 {
		u, err := parseShare(f.utilisation)
		if err != nil {
			return nil, badInput(fmt.Errorf("--utilisation: %w", err))
		}
		in.Utilisation = u
	}
	in.Spare, in.Zones = f.spare, f.zones
	in.Peak, in.Base, in.PeakSource = f.peak, f.base, "given"
	var fc *storeForecast
	if f.callsDB != "" && f.day == "" && (f.peak > 0 || f.prometheus != "") {
		return nil, badInput(errors.New("give one of --peak, --prometheus and --calls-db"))
	}
	if f.callsDB != "" && f.day == "" {
		if fc, err = f.storeForecast(cmd.Context()); err != nil {
			return nil, err
		}
		in.Peak, in.PeakSource = fc.Peak, fc.Source
		if in.Base == 0 {
			in.Base = fc.Base
		}
		if curve == nil {
			// The forecast's shape chooses the scaling behaviour, as a
			// Prometheus range query's does.
			curve = fc.curve()
		}
	}
	if f.prometheus != "" {
		q := f.query
		if q == "" {
			q = capacity.KEDAQuery(f.route, time.Minute)
		}
		now := time.Now()
		step := max(f.since/1000, 15*time.Second).Round(time.Second)
		tr, err := capacity.QueryTraffic(cmd.Context(), nil, f.prometheus, q, now.Add(-f.since), now, step)
		if err != nil {
			return nil, runtimeErr(err)
		}
		out.traffic = tr
		if curve == nil {
			curve = tr
		}
		if in.Peak == 0 {
			_, in.Peak = tr.Peak()
			in.PeakSource = "Prometheus, the last " + config.FormatDuration(f.since)
		}
	}
	if curve != nil {
		sp := curve.Spike()
		if in.Peak == 0 {
			in.Peak, in.PeakSource = sp.Peak, cmp.Or(curveName, "the traffic curve's peak")
		}
		if in.Base == 0 {
			in.Base = sp.Base
		}
		out.opts.Spike = sp
	}
	if in.Peak == 0 {
		return nil, badInput(errors.New("give --peak, or --prometheus or --calls-db to read it"))
	}
	if out.plan, err = capacity.NewPlan(in); err != nil {
		return nil, badInput(err)
	}
	if fc != nil {
		// The forecast's line goes before the peak's, which uses it.
		steps := out.plan.Steps
		out.plan.Steps = append(append(steps[:1:1], fc.Step), steps[1:]...)
	}
	if f.currentReplicas > 0 && f.headroom == "30%" {
		n := capacity.Spreadsheet(f.currentReplicas, f.currentRPS, in.Peak)
		out.plan.Steps = append(out.plan.Steps, fmt.Sprintf("spreadsheet: %d × %s ÷ %s × 1.3 = %.2f → %d replicas, the same rule",
			f.currentReplicas, strconv.FormatFloat(in.Peak, 'f', -1, 64), strconv.FormatFloat(f.currentRPS, 'f', -1, 64),
			float64(f.currentReplicas)*in.Peak/f.currentRPS*1.3, n))
	}
	out.opts.Name, out.opts.Namespace, out.opts.Route, out.opts.Metric = f.name, f.namespace, f.route, f.metric
	if f.cpuPerRequest > 0 {
		out.opts.CPUPerRequest = f.cpuPerRequest
	}
	if f.memory != "" {
		sz, err := config.ParseSize(f.memory)
		if err != nil {
			return nil, badInput(fmt.Errorf("--memory: %w", err))
		}
		out.opts.MemoryPerReplica = int64(sz)
	}
	if f.prometheus != "" {
		out.opts.Prometheus = f.prometheus
	}
	return out, nil
}

// parseShare reads "30%" or 0.3.
func parseShare(s string) (float64, error) {
	r, err := config.ParseRatio(s)
	if err != nil {
		return 0, err
	}
	return float64(r), nil
}

func newCapacityPlanCmd() *cobra.Command {
	var f planFlags
	var out, format string
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Replicas for a peak with headroom and failure tolerance, and the HPA, KEDA, VPA and PDB manifests",
		Long: `relia capacity plan computes replicas from the capacity of one replica
(the measured knee, a given figure, or today's load per replica) and a peak
(given, the highest request rate a Prometheus range query finds over the
gateway's metric, or the highest rate a forecast of the call store's hourly
traffic expects over --horizon), with headroom, a utilisation target and failure tolerance
(--spare for N+k, --zones to survive losing the largest zone), and shows the
arithmetic. The spreadsheet's rule, replicas × target ÷ current × 1.3, is
--current-replicas/--current-rps with the default headroom.

It writes the manifests to --out (or stdout with -o yaml): a
HorizontalPodAutoscaler (autoscaling/v2) on the gateway's request rate per
replica or on CPU, a KEDA ScaledObject with a Prometheus trigger on the same
rate (use one of the two), a PodDisruptionBudget, and a
VerticalPodAutoscaler in recommendation mode when CPU and memory were
measured.

With --calls-db the peak is the highest upper bound of the 95% prediction
interval (--forecast-peak mean: the highest mean) of a Holt-Winters forecast
with daily and weekly seasons of the store's last eight weeks, and the base
the forecast's lowest mean; the forecast needs two weeks of traffic.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" && format != "yaml" {
				return badInput(fmt.Errorf("-o %q: want table, json or yaml", format))
			}
			pl, err := makePlan(cmd, &f, nil, "")
			if err != nil {
				return err
			}
			manifests, err := pl.plan.Manifests(pl.opts)
			if err != nil {
				return badInput(err)
			}
			if out != "" {
				if err := os.WriteFile(out, manifests, 0o644); err != nil {
					return runtimeErr(fmt.Errorf("writing %s: %w", out, err))
				}
			}
			w := cmd.OutOrStdout()
			switch format {
			case "json":
				data, _ := json.Marshal(struct {
					*capacity.Plan
					Resources capacity.Resources `json:"resources"`
				}{pl.plan, pl.plan.Resources(pl.opts)})
				_, err = w.Write(append(data, '\n'))
			case "yaml":
				_, err = w.Write(manifests)
			default:
				_, err = io.WriteString(w, pl.plan.Text())
				if err == nil {
					_, why := pl.plan.Behavior(pl.opts.Spike)
					fmt.Fprintf(w, "scaling behaviour: %s\n", why)
					if r := pl.plan.Resources(pl.opts); r.CPU > 0 {
						fmt.Fprintf(w, "requests per replica: cpu %.3f cores (%.2f ms per request × %.1f req/s)", r.CPU, 1000*pl.opts.CPUPerRequest, pl.plan.Input.Capacity)
						if r.Memory > 0 {
							fmt.Fprintf(w, ", memory %d MiB", (r.Memory+1<<20-1)>>20)
						}
						fmt.Fprintln(w)
					}
					if out != "" {
						fmt.Fprintf(w, "manifests: %s\n", out)
					}
				}
			}
			if err != nil {
				return runtimeErr(err)
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&out, "out", "", "write the manifests (one YAML stream) to this file")
	cmd.Flags().StringVarP(&format, "output", "o", "table", "stdout format: table (the arithmetic), json or yaml (the manifests)")
	return cmd
}

// tableEverySecond is the longest simulation, in seconds, whose table
// prints each breached second.
const tableEverySecond = 600

// longCurve is the length past which simulate steps a curve by the
// second rather than by capacity.DefaultStep.
const longCurve = time.Hour

// simulateHorizon is how far ahead simulate's forecast curve reaches
// unless --horizon says otherwise.
const simulateHorizon = "1d"

type simulateFlags struct {
	plan                        planFlags
	traffic                     string
	blackFriday                 bool
	rate                        int
	duration                    time.Duration
	model                       string
	limit                       float64
	startup, timeout            time.Duration
	keda                        bool
	syncPeriod, window, polling time.Duration
	minReplicas, maxReplicas    int
	balance                     string
	slos                        []string
	proved, service             string
	html, format                string
}

func newCapacitySimulateCmd() *cobra.Command {
	var f simulateFlags
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay a traffic curve against the replica model and the autoscaler; the SLO verdict in words",
		Long: `relia capacity simulate replays a traffic curve (--traffic FILE with
"time,rate" lines, --black-friday for relia demo's spike, a Prometheus
range query with --prometheus, or from a call store with --calls-db: its
Holt-Winters forecast hour by hour over --horizon, default the next day,
the upper bound of its 95% interval or with --forecast-peak mean its mean;
or with --day YYYY-MM-DD the traffic it recorded that day, per minute
while the store keeps per-minute rollups, hour by hour after) against
replicas of the measured model
(--measurement, or --model λ,σ,κ), each taking --startup to join, under the
plan's HPA (or --keda: a ScaledObject) as Kubernetes runs it: the sync
period, the 10% tolerance, the stabilisation windows and the policies. It
prints the replicas, utilisation, latency and errors over time and the SLO
verdict in words, with the smallest minReplicas and pre-scale that keep the
SLOs when they are breached. A curve longer than an hour is simulated in
steps of a second, a shorter one in steps of 100ms.

--proved DIR sets a relia run of an autoscaled service (its output folder)
beside the simulation of the same traffic.

Exit codes: 0 every SLO held, 1 an SLO was breached, 2 bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd, &f) },
	}
	fl := cmd.Flags()
	f.plan.register(fl)
	// A day of the forecast, second by second, takes a second or two to
	// simulate; the plan's fortnight would take minutes with the
	// remedies' searches.
	f.plan.horizon = simulateHorizon
	fl.Lookup("horizon").DefValue = simulateHorizon
	fl.StringVar(&f.traffic, "traffic", "", `traffic curve: a file of "time,rate" lines (90s,1200)`)
	fl.StringVar(&f.plan.day, "day", "", "with --calls-db: replay the traffic the call store recorded on this day (YYYY-MM-DD, UTC) instead of its forecast")
	fl.BoolVar(&f.blackFriday, "black-friday", false, "the spike of relia demo's Black Friday experiment")
	fl.IntVar(&f.rate, "rate", 0, "with --black-friday: the baseline rate in req/s (default the demo's: 6 users a second, 19.2 req/s)")
	fl.DurationVar(&f.duration, "duration", 0, "with --black-friday: the run's length (default the demo's minute)")
	fl.StringVar(&f.model, "model", "", "replica model λ,σ,κ instead of the measurement's fit, e.g. 100,0.05,0.001")
	fl.Float64Var(&f.limit, "limit", 0, "requests a replica works on at once; more queue (default the model's peak)")
	fl.DurationVar(&f.startup, "startup", 30*time.Second, "how long a new replica takes to become ready")
	fl.DurationVar(&f.timeout, "timeout", capacity.DefaultTimeout, "how long a request waits before it fails")
	fl.BoolVar(&f.keda, "keda", false, "simulate the KEDA ScaledObject instead of the HPA")
	fl.DurationVar(&f.syncPeriod, "sync-period", autoscale.DefaultSyncPeriod, "the HPA's sync period")
	fl.DurationVar(&f.window, "metric-window", capacity.DefaultMetricWindow, "range of the request rate the autoscaler reads")
	fl.DurationVar(&f.polling, "polling-interval", 15*time.Second, "with --keda: its polling interval")
	fl.IntVar(&f.minReplicas, "min-replicas", 0, "override the plan's minReplicas")
	fl.IntVar(&f.maxReplicas, "max-replicas", 0, "override the plan's maxReplicas")
	fl.StringVar(&f.balance, "balance", capacity.BalanceLeastRequest, "how requests spread over replicas: least_request or round_robin")
	fl.StringArrayVar(&f.slos, "slo", nil, "SLO file judging every second (repeatable)")
	fl.StringVar(&f.proved, "proved", "", "output folder of a relia run with an autoscaled service, to compare")
	fl.StringVar(&f.service, "service", "", "with --proved: the autoscaled service (default the only one)")
	fl.StringVar(&f.html, "html", "", "write the capacity report to this file")
	fl.StringVarP(&f.format, "output", "o", "table", "stdout format: table or json")
	return cmd
}

func runSimulate(cmd *cobra.Command, f *simulateFlags) error {
	if f.format != "table" && f.format != "json" {
		return badInput(fmt.Errorf("-o %q: want table or json", f.format))
	}
	slos, err := readSLOs(f.slos)
	if len(f.slos) > 0 && err != nil {
		return err
	}
	var rec *experiment.ScalingRecord
	var journal *experiment.Journal
	if f.proved != "" {
		svc := f.service
		if svc == "" {
			matches, _ := filepath.Glob(filepath.Join(f.proved, "scaling-*.json"))
			if len(matches) != 1 {
				return badInput(fmt.Errorf("--proved %s: want one scaling-<service>.json there (found %d); name the service with --service", f.proved, len(matches)))
			}
			svc = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(matches[0]), "scaling-"), ".json")
		}
		if rec, journal, err = capacity.ReadProved(f.proved, svc); err != nil {
			return badInput(err)
		}
	}
	var curve capacity.Traffic
	var curveName string
	var curveStart time.Time // what offset 0 of a dated curve stands for
	sources := 0
	for _, given := range []bool{rec != nil, f.traffic != "", f.blackFriday, f.plan.callsDB != ""} {
		if given {
			sources++
		}
	}
	if sources > 1 {
		return badInput(errors.New("give one traffic curve: --traffic, --black-friday, --calls-db or --proved"))
	}
	if f.plan.day != "" && f.plan.callsDB == "" {
		return badInput(errors.New("--day goes with --calls-db: the call store that recorded the day"))
	}
	switch {
	case rec != nil:
		if curve, err = capacity.TrafficFromPlan(journal.Plan); err != nil {
			return badInput(err)
		}
	case f.traffic != "":
		fh, err := os.Open(f.traffic)
		if err != nil {
			return badInput(err)
		}
		curve, err = capacity.ParseTraffic(f.traffic, fh)
		fh.Close()
		if err != nil {
			return badInput(err)
		}
	case f.blackFriday:
		if curve, err = capacity.BlackFriday(f.rate, f.duration); err != nil {
			return badInput(err)
		}
	case f.plan.day != "":
		if curve, curveName, err = storeDay(cmd.Context(), &f.plan, f.plan.day, time.Now()); err != nil {
			return err
		}
		curveStart, _ = time.Parse(time.DateOnly, f.plan.day)
	case f.plan.callsDB != "":
		fc, err := f.plan.storeForecast(cmd.Context())
		if err != nil {
			return err
		}
		curve = fc.curve()
		if len(fc.Points) > 0 {
			curveStart = fc.Points[0].T
		}
	case f.plan.prometheus == "":
		return badInput(errors.New("give the traffic: --traffic FILE, --black-friday, --calls-db DB (a forecast, or --day), --prometheus URL or --proved DIR"))
	}
	pl, err := makePlan(cmd, &f.plan, curve, curveName)
	if err != nil {
		return err
	}
	if curve == nil {
		curve = pl.traffic
	}
	replica := capacity.Replica{Limit: f.limit, StartupDelay: f.startup, Timeout: f.timeout}
	switch {
	case f.model != "":
		parts := strings.Split(f.model, ",")
		var v [3]float64
		if len(parts) != 3 {
			return badInput(fmt.Errorf("--model %q: want λ,σ,κ", f.model))
		}
		for i, p := range parts {
			if v[i], err = strconv.ParseFloat(strings.TrimSpace(p), 64); err != nil || v[i] < 0 {
				return badInput(fmt.Errorf("--model %q: want three numbers >= 0", f.model))
			}
		}
		replica.Model = capacity.USL{Lambda: v[0], Sigma: v[1], Kappa: v[2]}
	case pl.m != nil && pl.m.Fit != nil:
		replica.Model = pl.m.Fit.Model
	default:
		return badInput(errors.New("the simulation needs a model of one replica: --measurement with a USL fit, or --model λ,σ,κ"))
	}
	var sc capacity.Scenario
	behavior, why := pl.plan.Behavior(pl.opts.Spike)
	if rec != nil {
		if sc, err = capacity.ProvedScenario(rec, journal.Plan, journal.Start, replica, slos); err != nil {
			return badInput(err)
		}
	} else {
		minR, maxR := int32(pl.plan.MinReplicas), int32(pl.plan.MaxReplicas)
		if f.minReplicas > 0 {
			minR = int32(f.minReplicas)
		}
		if f.maxReplicas > 0 {
			maxR = int32(f.maxReplicas)
		}
		sc = capacity.Scenario{Traffic: curve, Replica: replica, SLOs: slos,
			Scaling: capacity.Scaling{MetricWindow: f.window, Balance: f.balance}}
		if curve.End() > longCurve {
			// A recorded day or a forecast: steps of a second keep it
			// to seconds of CPU, and its points are minutes apart.
			sc.Step = time.Second
		}
		h := autoscale.HPA{Min: max(minR, 1), Max: maxR, Target: pl.plan.PerReplica, SyncPeriod: f.syncPeriod, Behavior: &behavior}
		if f.keda {
			sc.Scaling.KEDA = &autoscale.KEDA{MinReplicas: minR, MaxReplicas: maxR, Threshold: pl.plan.PerReplica, PollingInterval: f.polling, HPA: h}
		} else {
			sc.Scaling.HPA = &h
		}
	}
	a, err := capacity.Assess(sc)
	if err != nil {
		return badInput(err)
	}
	var proved *capacity.Proved
	if rec != nil {
		if proved, err = capacity.Prove(rec, journal.Start, journal.End, slos); err != nil {
			return runtimeErr(err)
		}
	}
	if f.html != "" {
		if err := writePage(f.html, capacity.ReportInput{Title: "Capacity plan", Measurement: pl.m, Plan: pl.plan, Behavior: why, Assessment: a, Proved: proved,
			TrafficStart: curveStart}); err != nil {
			return err
		}
	}
	w := cmd.OutOrStdout()
	if f.format == "json" {
		data, err := json.Marshal(struct {
			Plan       *capacity.Plan       `json:"plan"`
			Simulation *capacity.Assessment `json:"simulation"`
			Proved     *capacity.Proved     `json:"proved,omitempty"`
		}{pl.plan, a, proved})
		if err != nil {
			return runtimeErr(err)
		}
		if _, err := w.Write(append(data, '\n')); err != nil {
			return runtimeErr(err)
		}
	} else {
		writeSimulation(w, a, proved)
	}
	if a.Breached() {
		return &exitError{code: exitFailed, err: errors.New("the simulation breaches an SLO")}
	}
	return nil
}

// writeSimulation prints the simulation every few seconds, at each
// change of the replica count and in breached seconds, and its verdict.
// Past tableEverySecond seconds (a recorded day, a forecast) a breach
// prints its first and last seconds only, not each one.
func writeSimulation(w io.Writer, a *capacity.Assessment, pr *capacity.Proved) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "t\toffered\tserved\tfailed\treplicas\tready\tutilisation\tlatency\tbreached\t"
	if pr != nil {
		head += "proved replicas\tproved breached\t"
	}
	fmt.Fprintln(tw, head)
	every := max(len(a.Seconds)/40, 1)
	long := len(a.Seconds) > tableEverySecond
	for i, s := range a.Seconds {
		show := i%every == 0 || i > 0 && a.Seconds[i-1].Replicas != s.Replicas
		if long {
			// a breach begins or ends here
			show = show || (i > 0 && !slices.Equal(a.Seconds[i-1].Breached, s.Breached)) ||
				(i+1 < len(a.Seconds) && !slices.Equal(a.Seconds[i+1].Breached, s.Breached))
		} else {
			show = show || len(s.Breached) > 0
		}
		if !show {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%.0f%%\t%s\t%s\t", config.FormatDuration(s.At),
			capacity.FormatRate(s.Offered), capacity.FormatRate(s.Served), capacity.FormatRate(s.Failed), s.Replicas, s.Ready,
			100*s.Utilisation, s.Latency.Round(100*time.Microsecond), strings.Join(s.Breached, ","))
		if pr != nil && i < len(pr.Seconds) {
			fmt.Fprintf(tw, "%d\t%s\t", pr.Seconds[i].Replicas, strings.Join(pr.Seconds[i].Breached, ","))
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s.\n", a.Verdict)
	if pr != nil {
		fmt.Fprintf(w, "The proved run breached for %s; the simulation predicted %s.\n", config.FormatDuration(pr.TotalBreach()), config.FormatDuration(a.TotalBreach()))
	}
}
