package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/experiment"
)

func newDemoAICmd() *cobra.Command {
	var f demoFlags
	cmd := &cobra.Command{
		Use:   "ai",
		Short: "Run the AI assistant experiment: streaming load through relia's AI gateway, provider faults, SLO verdict and report",
		Long: `relia demo ai starts an in-process assistant service that streams answers
from a model through relia's AI gateway, with two simulated providers
behind it (alpha, the primary, and beta, the fallback) and three tenants
(acme, globex, and initech with a small token quota). It runs the assistant
experiment: a baseline, a 3x spike, alpha's first token a second late,
alpha answering 429 with Retry-After, alpha's streams stalling after a few
tokens, and initech spending its quota, judged by the SLOs 97%
availability, 95% of first tokens within 500 ms and 95% goodput. It prints
the verdict, each tenant's calls (served, refused by its quota, failed)
and the scorecard and writes the report into the folder it names. Nothing
to install.

  relia demo ai                      # about a minute
  relia demo ai --no-resilience      # the same faults without failover, hedging, idle timeouts and breakers
  relia demo ai --export ./ai        # write the experiment to edit and run with relia run ./ai/ai-assistant.yaml

Exit codes as relia run: 0 passed, 1 failed, 3 aborted, 4 runtime error,
5 inconclusive (the load generator could not keep its schedule).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := f.options(cmd)
			if f.export != "" {
				if err := experiment.ExportDemoAI(f.export, o); err != nil {
					return badInput(err)
				}
				file := filepath.Join(f.export, experiment.DemoAIExperimentFile)
				fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nrun it with: relia run %s\n", file, file)
				return nil
			}
			return f.run(cmd, "relia-demo-ai-", "relia demo ai: the assistant behind relia's AI gateway", experiment.DemoAIPlan)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.duration, "duration", experiment.DefaultDemoDuration, "length of the whole run; every phase and fault scales with it")
	fl.IntVar(&f.rate, "rate", experiment.DefaultDemoAIRate, "baseline questions per second, each a streamed answer; the spike sends three times as many")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of every random decision (default random); printed and recorded")
	fl.StringVar(&f.out, "out-dir", "", "folder for the report, journal and rules (default ./relia-demo-ai-<time>)")
	fl.StringVar(&f.export, "export", "", "write the demo's experiment into this folder and exit")
	fl.BoolVar(&f.noResilience, "no-resilience", false, "switch off the AI gateway's failover, hedging, idle timeout and breakers")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log the run's events (services, faults) to stderr as JSON")
	return cmd
}
