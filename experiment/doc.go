// Package experiment is relia's main job: load, faults and an SLO verdict
// in one run. It holds everything of that workflow that does not drive
// traffic itself, so that the runner is a thin loop over it:
//
//   - the `kind: Experiment` spec, loaded strictly and resolved into a
//     Plan (phases with offsets, a fault schedule, abort conditions, SLOs,
//     every random decision made from one seed), which `relia run
//     --dry-run` prints;
//   - Source and DeriveSeed, the seeded streams behind every random
//     choice, so that `relia run --seed` replays a run's decisions;
//   - the AbortMonitor, which judges the abort conditions on the live
//     recorder at every tick;
//   - Judge, the verdict over the run's recorder and fault timeline; the
//     Scorecard graded from it by documented rules; the Journal
//     (journal.json); and the terminal Summary.
//
//	plan, err := experiment.ReadFile("black-friday.yaml", experiment.Options{})
//	if err != nil {
//		return err // black-friday.yaml:31:11: spec.phases[2].faults[1]: overlaps fault "slow" ...
//	}
//	plan.Text(os.Stdout) // the dry run
//
// See docs/experiment.md for the spec reference, the journal schema and
// the scorecard rules.
package experiment
