// Package experiment is relia's main job: load, faults and an SLO verdict
// in one run.
//
//	plan, err := experiment.ReadFile("black-friday.yaml", experiment.Options{})
//	if err != nil {
//		return err // black-friday.yaml:31:11: spec.phases[2].faults[1]: overlaps fault "slow" ...
//	}
//	plan.Text(os.Stdout) // the dry run
//	res, err := experiment.Run(ctx, plan, experiment.RunOptions{OutDir: "out", Stdout: os.Stdout})
//	if err != nil {
//		return err // res.ExitCode: ExitBadArgs (nothing sent) or ExitRuntime
//	}
//	os.Exit(res.ExitCode) // 0 passed, 1 failed, 3 aborted or interrupted
//
// Run starts the target (the demo shop behind the relia gateway, or
// command services), a fault server, runs the phases with their load and
// faults, and rolls every fault back on every path; DemoPlan is the
// "Black Friday" experiment of relia demo.
//
// The pieces, in the order a run uses them:
//
//   - the `kind: Experiment` spec, loaded strictly and resolved into a
//     Plan (phases with offsets, a fault schedule, abort conditions, SLOs,
//     every random decision made from one seed), which `relia run
//     --dry-run` prints, and Preflight, which checks that the target
//     answers before any traffic;
//   - Source and DeriveSeed, the seeded streams behind every random
//     choice, so that `relia run --seed` replays a run's decisions;
//   - the AbortMonitor, which judges the abort conditions on the live
//     recorder at every tick;
//   - Judge, the verdict over the run's recorder and timeline; Score,
//     the scorecard graded from it by the documented Rules; the Journal
//     (journal.json); and the terminal Summary.
//
// The runner starts a run on a recorder bucket boundary, so that phases
// and faults line up with the buckets the verdict reads.
//
// See docs/experiment.md for the spec reference, the verdict's methods,
// the scorecard rules and the journal schema.
package experiment
