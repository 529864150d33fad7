package experiment

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/relia-dev/relia/internal/shop"
)

// DefaultDemoDuration is how long the demo runs unless told otherwise.
const DefaultDemoDuration = time.Minute

// DefaultDemoRate is the demo's baseline arrival rate in users per
// second, each walking a journey of the shop's scenario (about 3.2
// requests: some 20 requests a second); the spike goes to ten times it.
const DefaultDemoRate = 6

// MinDemoDuration is the shortest demo: below it the phases are shorter
// than the recorder's one-second buckets the verdict reads.
const MinDemoDuration = 10 * time.Second

// The files ExportDemo writes.
const (
	DemoExperimentFile = "black-friday.yaml"
	DemoScenarioFile   = "scenario.yaml"
)

// DemoOptions configure the demo's "Black Friday" experiment.
type DemoOptions struct {
	// Duration is the whole run; every phase, fault and load stage scales
	// with it. Zero means DefaultDemoDuration; below MinDemoDuration is
	// an error.
	Duration time.Duration
	// Seed, when set, is the seed of every random decision; nil picks one
	// at random (and the plan records it).
	Seed *uint64
	// Rate is the baseline arrival rate in users per second (each walks
	// one journey of the shop's scenario); the spike goes to ten times
	// it. Zero means DefaultDemoRate.
	Rate int
	// NoResilience switches off the gateway's retries, breakers, health
	// checks and fallbacks and the services' own policies, to show what
	// they are worth: the same faults then fail the verdict.
	NoResilience bool
}

// demoTemplate is the Black Friday experiment on the demo shop. Its
// durations are those of a one-minute run; scale multiplies them.
const demoTemplate = `# relia demo: the "Black Friday" experiment on the embedded demo shop.
#
# The shop (catalog, users, payments with a flaky processor, and
# recommendations with a fallback to popular items) runs behind the relia
# gateway. The experiment asks whether it keeps its SLOs through a 10x
# spike, a slow and failing payment processor and a lost catalog replica.
# Run it again with: relia run {{.File}}
kind: Experiment
version: relia/v1
metadata:
  name: black-friday
  labels: {demo: "true"}
spec:
  description: the shop keeps its SLOs through a 10x spike, a degraded payment processor and a lost catalog replica
{{- if .Seed}}
  seed: {{.Seed}}
{{- end}}
  target:
    services:
      - name: shop
        shop: {disableResilience: {{.NoResilience}}}
  slos:
    - id: shop-availability
    - id: shop-latency
{{- if .Scenario}}
  scenario: {{.Scenario}}
{{- end}}
  phases:
    - name: baseline
      duration: {{.S 12}}
      load: {rate: {{.Rate}}}
    - name: spike
      duration: {{.S 10}}
      load:
        rate: {{.Rate}}
        stages:
          - {duration: {{.Of 10 0.1}}, target: {{.Peak}}}
          - {duration: {{.Of 10 0.7}}, target: {{.Peak}}}
          - {duration: {{.Of 10 0.1}}, target: {{.Rate}}}
        maxInFlight: 400
    - name: payments-degraded
      duration: {{.S 14}}
      load: {rate: {{.Rate}}}
      faults:
        - name: processor-slow
          duration: {{.Half 14}}
          toxic: {proxy: processor, type: http, attributes: {delay: 400}, toxicity: 30%}
        - name: processor-errors
          start: {{.Half 14}}
          toxic: {proxy: processor, type: http, attributes: {abort_status: 503}, toxicity: 10%}
    - name: replica-lost
      duration: {{.S 12}}
      load: {rate: {{.Rate}}}
      faults:
        - name: kill-catalog
          start: {{.Half 2}}
          process: {action: kill, service: catalog}
    - name: recovery
      duration: {{.S 12}}
      load: {rate: {{.Rate}}}
  recovery: {window: {{.S 5}}, bound: {{.S 30}}}
  thresholds:
    http_req_duration: ["p(95)<200"]
    http_req_failed: ["rate<0.01"]
  abort:
    - name: latency-runaway
      threshold: http_req_duration:p(99)<5s
      window: {{.S 10}}
      for: {{.S 5}}
---
kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: shop
  description: Requests through the gateway that succeed.
  objective: 99.9%
  sli:
    availability:
      errorQuery: sum(rate(http_server_request_duration_seconds_count{http_response_status_code=~"5.."}[{{"{{"}}.window{{"}}"}}]))
      totalQuery: sum(rate(http_server_request_duration_seconds_count[{{"{{"}}.window{{"}}"}}]))
      goodClasses: [ok]
---
kind: SLO
version: relia/v1
metadata: {name: latency}
spec:
  service: shop
  description: Requests answered within 200 ms, as the shoppers see them.
  objective: 95%
  sli:
    latency: {metric: http_server_request_duration_seconds, threshold: 200ms}
`

// demoData fills demoTemplate.
type demoData struct {
	File, Scenario string
	Seed           string
	NoResilience   bool
	Rate, Peak     int
	scale          float64
}

// S scales a length of the one-minute run to the demo's, in whole
// seconds and at least one: phases and faults start and end on the
// recorder's one-second buckets, which the verdict reads.
func (d demoData) S(seconds float64) string { return d.seconds(seconds).String() }

// Half is half of S(seconds), rounded down to the second: the middle of a
// phase, where its second fault starts.
func (d demoData) Half(seconds float64) string {
	return (d.seconds(seconds) / 2).Truncate(time.Second).String()
}

// Of is the share of phase S(seconds) that a load stage lasts, to the
// 100 ms.
func (d demoData) Of(seconds, share float64) string {
	return time.Duration(float64(d.seconds(seconds)) * share).Round(100 * time.Millisecond).String()
}

func (d demoData) seconds(seconds float64) time.Duration {
	return max(time.Duration(math.Round(seconds*d.scale))*time.Second, time.Second)
}

// newDemoData checks a demo's options (o.Rate has its default already)
// and fills in what its template needs but the file and the peak.
func newDemoData(o DemoOptions) (demoData, error) {
	if o.Duration == 0 {
		o.Duration = DefaultDemoDuration
	}
	if o.Duration < MinDemoDuration {
		return demoData{}, fmt.Errorf("the demo needs at least %s, not %s", MinDemoDuration, o.Duration)
	}
	if o.Rate < 0 {
		return demoData{}, fmt.Errorf("the demo's rate %d is negative", o.Rate)
	}
	d := demoData{NoResilience: o.NoResilience, Rate: o.Rate, scale: float64(o.Duration) / float64(DefaultDemoDuration)}
	if o.Seed != nil {
		d.Seed = fmt.Sprint(*o.Seed)
	}
	return d, nil
}

// demoYAML renders the experiment file of the demo; scenario names the
// scenario file it refers to, or is empty for the shop's built-in one.
func demoYAML(o DemoOptions, scenario string) ([]byte, error) {
	if o.Rate == 0 {
		o.Rate = DefaultDemoRate
	}
	d, err := newDemoData(o)
	if err != nil {
		return nil, err
	}
	d.File, d.Scenario, d.Peak = DemoExperimentFile, scenario, 10*d.Rate
	var b bytes.Buffer
	if err := template.Must(template.New("demo").Parse(demoTemplate)).Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ExportDemo writes the demo's experiment (with its SLOs) and the shop's
// traffic scenario into dir, so that a user can edit them and run them
// with relia run.
func ExportDemo(dir string, o DemoOptions) error {
	data, err := demoYAML(o, DemoScenarioFile)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("exporting the demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, DemoExperimentFile), data, 0o644); err != nil {
		return fmt.Errorf("exporting the demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, DemoScenarioFile), append([]byte("# relia run sends this to the target it starts (the gateway in front of the\n# shop), whatever baseURL says; baseURL is for relia load on its own.\n"), shop.ScenarioYAML("http://127.0.0.1:8080")...), 0o644); err != nil {
		return fmt.Errorf("exporting the demo: %w", err)
	}
	return nil
}

// DemoPlan resolves the demo's experiment, exactly as relia run resolves
// the files ExportDemo writes, except that the scenario is the shop's own
// built in rather than a file.
func DemoPlan(o DemoOptions) (*Plan, error) {
	data, err := demoYAML(o, "")
	if err != nil {
		return nil, err
	}
	return Parse(DemoExperimentFile, data, Options{Seed: o.Seed})
}
