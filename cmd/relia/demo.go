package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/experiment"
)

func init() { register(newDemoCmd) }

// options are the demo's options from its flags.
func (f *demoFlags) options(cmd *cobra.Command) experiment.DemoOptions {
	o := experiment.DemoOptions{Duration: f.duration, Rate: f.rate, NoResilience: f.noResilience}
	if cmd.Flags().Changed("seed") {
		o.Seed = &f.seed
	}
	return o
}

// run resolves a demo's plan from the flags (an error is bad input) and
// runs it, writing into --out-dir or a folder named prefix and the time,
// after a line on stderr that says what runs and whether resilience is
// on.
func (f *demoFlags) run(cmd *cobra.Command, prefix, what string, resolve func(experiment.DemoOptions) (*experiment.Plan, error)) error {
	plan, err := resolve(f.options(cmd))
	if err != nil {
		return badInput(err)
	}
	out := f.out
	if out == "" {
		out = prefix + time.Now().Format("20060102-150405")
	}
	resilience := "on"
	if f.noResilience {
		resilience = "off (--no-resilience)"
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s, resilience %s\n", what, resilience)
	return runExperiment(cmd, plan, out, "", f.verbose)
}

// demoFlags are relia demo's flags.
type demoFlags struct {
	duration     time.Duration
	rate         int
	seed         uint64
	out          string
	export       string
	noResilience bool
	verbose      bool
}

func newDemoCmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the Black Friday experiment on an embedded shop: load, faults, SLO verdict and report",
		Long: `relia demo starts an in-process demo shop behind the relia gateway (catalog,
users, payments with a flaky processor, recommendations with a fallback to
popular items) and runs the "Black Friday" experiment on it: a baseline, a
10x spike, a slow and then failing payment processor, a killed catalog
replica, and recovery, judged by the SLOs 99.9% availability and p95 under
200 ms, with errors under 1%. It prints the verdict and the scorecard and
writes the report into the folder it names. Nothing to install.

  relia demo                      # about a minute
  relia demo --no-resilience      # the same faults without the gateway's retries, breakers and fallbacks
  relia demo --export ./bf        # write the configs to edit and run with relia run ./bf/black-friday.yaml

Exit codes as relia run: 0 passed, 1 failed, 3 aborted, 4 runtime error,
5 inconclusive (the load generator could not keep its schedule: the shop
was not judged; lower --rate or run on a quieter host).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := f.options(cmd)
			if f.export != "" {
				if err := experiment.ExportDemo(f.export, o); err != nil {
					return badInput(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s and %s\nrun them with: relia run %s\n",
					filepath.Join(f.export, experiment.DemoExperimentFile), filepath.Join(f.export, experiment.DemoScenarioFile),
					filepath.Join(f.export, experiment.DemoExperimentFile))
				return nil
			}
			return f.run(cmd, "relia-demo-", "relia demo: the demo shop behind the relia gateway", experiment.DemoPlan)
		},
	}
	cmd.AddCommand(newDemoAICmd())
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", experiment.DefaultDemoDuration, "length of the whole run; every phase and fault scales with it")
	fl.IntVar(&f.rate, "rate", experiment.DefaultDemoRate, "baseline users per second, each walking a journey of about 3 requests; the spike sends ten times as many")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of every random decision (default random); printed and recorded")
	fl.StringVar(&f.out, "out-dir", "", "folder for the report, journal and rules (default ./relia-demo-<time>)")
	fl.StringVar(&f.out, "out", "", "the same as --out-dir")
	_ = fl.MarkDeprecated("out", "use --out-dir: --out names a file in relia load, slo and merge")
	fl.StringVar(&f.export, "export", "", "write the demo's experiment and scenario into this folder and exit")
	fl.BoolVar(&f.noResilience, "no-resilience", false, "switch off the gateway's retries, breakers, health checks and fallbacks")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log the run's events (services, faults) to stderr as JSON")
	return cmd
}
