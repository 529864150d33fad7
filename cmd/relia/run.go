package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/experiment"
)

func init() {
	register(newRunCmd)
	registerValidator(experiment.Kind, func(name string, data []byte) error {
		_, err := experiment.Parse(name, data, experiment.Options{})
		return err
	})
}

// runFlags are relia run's flags.
type runFlags struct {
	seed    uint64
	dryRun  bool
	out     string
	verbose bool
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run EXPERIMENT.yaml",
		Short: "Run an experiment: load and faults in one run, judged by SLOs, with a report",
		Long: `relia run carries out a kind: Experiment file: it starts the target's
services (or checks that its URL answers), runs the phases back to back with
their load, injects each fault at its time as a lease the run renews, and
judges the run against the SLOs: a verdict per phase and for the run, a
scorecard graded A-F, journal.json, report.html and the SLOs' Prometheus
rules with promtool tests, in the folder --out-dir names (default
./relia-run-<name>-<time>, printed at the end).

  relia run experiment.yaml --dry-run     # the plan, no traffic
  relia run experiment.yaml --seed 42     # replay the decisions of seed 42
  relia run schema                        # the JSON Schema of experiment files

Every fault is rolled back on every path: on schedule, on an abort
condition, on Ctrl-C or SIGTERM, and on an error; even SIGKILL leaves
nothing injected past the fault lease.

The load generator judges itself first: when it could not send the
requests on time (more than 10% over 10ms late, by default), the run is
inconclusive: the SLOs and thresholds are reported, not judged.

Exit codes: 0 the verdict passed, 1 it failed, 2 bad input (nothing was
sent), 3 aborted (an abort condition, Ctrl-C or SIGTERM), 4 runtime error,
5 inconclusive (the load generator could not keep its schedule).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var opts experiment.Options
			if cmd.Flags().Changed("seed") {
				opts.Seed = &f.seed
			}
			plan, err := experiment.ReadFile(args[0], opts)
			if err != nil {
				return badInput(err)
			}
			if f.dryRun {
				if err := plan.Text(cmd.OutOrStdout()); err != nil {
					return runtimeErr(err)
				}
				return nil
			}
			out := f.out
			if out == "" {
				out = fmt.Sprintf("relia-run-%s-%s", plan.Name, time.Now().Format("20060102-150405"))
			}
			return runExperiment(cmd, plan, out, f.verbose)
		},
	}
	fl := cmd.Flags()
	fl.Uint64Var(&f.seed, "seed", 0, "seed of every random decision (default: the spec's, or random); printed and recorded")
	fl.BoolVar(&f.dryRun, "dry-run", false, "resolve and validate everything, print the plan, send nothing")
	fl.StringVar(&f.out, "out-dir", "", "folder for journal.json, report.html and the SLO rules (default ./relia-run-<name>-<time>)")
	fl.StringVar(&f.out, "out", "", "the same as --out-dir")
	_ = fl.MarkDeprecated("out", "use --out-dir: --out names a file in relia load, slo and merge")
	cmd.AddCommand(newRunSchemaCmd())
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log the run's events (services, faults) to stderr as JSON")
	return cmd
}

// runExperiment runs a plan with Ctrl-C and SIGTERM rolling it back,
// prints the summary and where the files went, and maps the result to
// the exit code.
func runExperiment(cmd *cobra.Command, plan *experiment.Plan, out string, verbose bool) error {
	stderr := cmd.ErrOrStderr()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := experiment.RunOptions{OutDir: out, Stdout: cmd.OutOrStdout()}
	progress := newProgressPrinter(stderr)
	defer progress.close()
	opts.Progress = progress.print
	if verbose {
		opts.Logger = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	fmt.Fprintf(stderr, "experiment %s: seed %d (%s), %s planned\n", plan.Name, plan.Seed, plan.SeedFrom, plan.Total)
	res, err := experiment.Run(ctx, plan, opts)
	progress.close()
	if len(res.Files) > 0 {
		abs, _ := filepath.Abs(out)
		fmt.Fprintf(cmd.OutOrStdout(), "\nreport: %s\n", filepath.Join(abs, experiment.ReportFile))
	}
	return runExit(res, err)
}

// runExit turns a run's result into relia's exit code.
func runExit(res *experiment.Result, err error) error {
	if err != nil {
		if res.ExitCode == experiment.ExitInconclusive {
			err = fmt.Errorf("inconclusive: %s; the run broke too: %w", res.Verdict.Generator.Reason, err)
		}
		return &exitError{code: res.ExitCode, err: err}
	}
	switch res.ExitCode {
	case experiment.ExitPass:
		return nil
	case experiment.ExitAborted:
		reason := "interrupted"
		if res.Verdict != nil && res.Verdict.Abort != nil {
			reason = res.Verdict.Abort.Condition + ": " + res.Verdict.Abort.Reason
		}
		return &exitError{code: exitAborted, err: errors.New("aborted: " + reason)}
	case experiment.ExitInconclusive:
		return &exitError{code: exitInconclusive, err: errors.New("inconclusive: " + res.Verdict.Generator.Reason)}
	default:
		return &exitError{code: res.ExitCode, err: errors.New("the verdict failed")}
	}
}
