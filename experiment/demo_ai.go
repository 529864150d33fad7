package experiment

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
)

// DefaultDemoAIRate is the AI demo's baseline rate in questions a
// second; the spike goes to three times it.
const DefaultDemoAIRate = 10

// DemoAIExperimentFile is the file ExportDemoAI writes.
const DemoAIExperimentFile = "ai-assistant.yaml"

// demoAITemplate is the AI assistant experiment on the embedded AI
// stack. Its durations are those of a one-minute run; scale multiplies
// them.
const demoAITemplate = `# relia demo ai: the assistant experiment on the embedded AI stack.
#
# An assistant service streams answers from a model through relia's AI
# gateway, which routes them to two simulated providers: alpha, the
# primary, and beta, the fallback. Tenants acme, globex and initech call
# it; initech has a small token quota. The experiment asks whether the
# assistant keeps its SLOs on availability, time to first token and
# goodput through a spike, a rate-limited, a stalling and a slow provider,
# and a tenant over its quota.
# Run it again with: relia run {{.File}}
kind: Experiment
version: relia/v1
metadata:
  name: ai-assistant
  labels: {demo: "true"}
spec:
  description: the assistant keeps its SLOs through a 3x spike, a rate-limited provider, a stalling provider, a provider slow to its first token and a tenant over its token quota
{{- if .Seed}}
  seed: {{.Seed}}
{{- end}}
  target:
    services:
      - name: assistant
        ai: {disableResilience: {{.NoResilience}}}
  slos:
    - id: assistant-availability
    - id: assistant-ttft
      measure: llm_time_to_first_token
    - id: assistant-goodput
      measure: llm_goodput
  phases:
    - name: baseline
      duration: {{.S 10}}
      load:
        rate: {{.Rate}}
        llm: {{template "llm" "[acme, globex]"}}
    - name: spike
      duration: {{.S 8}}
      load:
        rate: {{.Rate}}
        stages:
          - {duration: {{.Of 8 0.1}}, target: {{.Peak}}}
          - {duration: {{.Of 8 0.7}}, target: {{.Peak}}}
          - {duration: {{.Of 8 0.1}}, target: {{.Rate}}}
        maxInFlight: 200
        llm: {{template "llm" "[acme, globex]"}}
    - name: provider-slow
      duration: {{.S 8}}
      load:
        rate: {{.Rate}}
        llm: {{template "llm" "[acme, globex]"}}
      faults:
        - name: alpha-slow-first-token
          provider: {provider: alpha, kind: slow_first_token, delay: 1s}
    - name: provider-rate-limited
      duration: {{.S 10}}
      load:
        rate: {{.Rate}}
        llm: {{template "llm" "[acme, globex]"}}
      faults:
        - name: alpha-429
          provider: {provider: alpha, kind: status, status: 429, retryAfter: 2s, rate: 50%}
    - name: provider-stalls
      duration: {{.S 10}}
      load:
        rate: {{.Rate}}
        llm: {{template "llm" "[acme, globex]"}}
      faults:
        - name: alpha-stalls
          provider: {provider: alpha, kind: stall, afterTokens: 3}
    - name: quota-exhausted
      duration: {{.S 10}}
      load:
        rate: {{.Rate}}
        llm: {{template "llm" "[acme, globex, initech]"}}
  recovery: {window: {{.S 5}}, bound: {{.S 30}}}
  # A question is due every 100 ms or so and its answer takes some 200 ms:
  # a send up to 50 ms late still measures the assistant (and lateness
  # counts in the figures, which run from the due time).
  generator: {lateAfter: 50ms}
  thresholds:
    http_req_failed: ["rate<0.03"]
  abort:
    - name: stream-runaway
      threshold: http_req_duration:p(99)<10s
      window: {{.S 10}}
      for: {{.S 5}}
---
kind: SLO
version: relia/v1
metadata: {name: availability}
spec:
  service: assistant
  description: Questions answered by a stream that ended well; a tenant's own quota refusals (429) count as answered.
  objective: 97%
  sli:
    availability:
      errorQuery: sum(rate(gen_ai_client_operation_duration_seconds_count{outcome=~"error|failed_mid_stream"}[{{"{{"}}.window{{"}}"}}]))
      totalQuery: sum(rate(gen_ai_client_operation_duration_seconds_count{outcome!="cancelled"}[{{"{{"}}.window{{"}}"}}]))
      goodClasses: [ok]
---
kind: SLO
version: relia/v1
metadata: {name: ttft}
spec:
  service: assistant
  description: Answers whose first token comes within 500 ms of the question.
  objective: 95%
  sli:
    latency: {metric: gen_ai_server_time_to_first_token_seconds, threshold: 500ms}
---
kind: SLO
version: relia/v1
metadata: {name: goodput}
spec:
  service: assistant
  description: Questions answered in full with the first token within 500 ms.
  objective: 95%
  sli:
    availability: {goodClasses: [ok]}
{{- define "llm"}}{path: /ask, api: openai, maxTokens: 24, idleTimeout: 3s, users: {{.}}, goodput: {ttft: 500ms}, expectedStatuses: [429]}{{end}}
`

// demoAIYAML renders the AI demo's experiment file.
func demoAIYAML(o DemoOptions) ([]byte, error) {
	if o.Rate == 0 {
		o.Rate = DefaultDemoAIRate
	}
	d, err := newDemoData(o)
	if err != nil {
		return nil, err
	}
	d.File, d.Peak = DemoAIExperimentFile, 3*d.Rate
	var b bytes.Buffer
	if err := template.Must(template.New("demo-ai").Parse(demoAITemplate)).Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ExportDemoAI writes the AI demo's experiment (with its SLOs) into dir,
// so that a user can edit it and run it with relia run.
func ExportDemoAI(dir string, o DemoOptions) error {
	data, err := demoAIYAML(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("exporting the AI demo: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, DemoAIExperimentFile), data, 0o644); err != nil {
		return fmt.Errorf("exporting the AI demo: %w", err)
	}
	return nil
}

// DemoAIPlan resolves the AI demo's experiment, exactly as relia run
// resolves the file ExportDemoAI writes.
func DemoAIPlan(o DemoOptions) (*Plan, error) {
	data, err := demoAIYAML(o)
	if err != nil {
		return nil, err
	}
	return Parse(DemoAIExperimentFile, data, Options{Seed: o.Seed})
}
