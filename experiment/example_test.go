package experiment_test

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/outcome"
)

const blackFriday = `kind: Experiment
version: relia/v1
metadata: {name: checkout}
spec:
  seed: 42
  target: {url: "http://127.0.0.1:8080"}
  slos:
    - inline: {metadata: {name: availability}, spec: {service: checkout, objective: 99%, sli: {availability: {goodClasses: [ok]}}}}
  phases:
    - {name: baseline, duration: 10s, load: {rate: 20}}
    - {name: spike, duration: 10s, load: {rate: 20, stages: [{duration: 2s, target: 200}]}}
`

// A plan is the experiment resolved: offsets, defaults and seeded
// decisions. The runner follows it; the verdict judges a run of it.
func Example() {
	plan, err := experiment.Parse("checkout.yaml", []byte(blackFriday), experiment.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ph := range plan.Phases {
		fmt.Println(ph.Name, ph.Start, ph.End)
	}

	// A run that went to plan, every request fine.
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	rec, _ := outcome.NewRecorder(outcome.Options{})
	for at := start; at.Before(start.Add(plan.Total)); at = at.Add(50 * time.Millisecond) {
		rec.Record(outcome.Outcome{Start: at, Latency: 20 * time.Millisecond, Status: 200})
	}
	v, err := experiment.Judge(plan, rec, experiment.PlannedTimeline(plan, start))
	if err != nil {
		fmt.Println(err)
		return
	}
	sc := experiment.Score(plan, v)
	fmt.Println("passed:", v.Passed, "grade:", sc.Grade, "exit:", v.ExitCode)
	// Output:
	// baseline 0s 10s
	// spike 10s 20s
	// passed: true grade: A exit: 0
}
