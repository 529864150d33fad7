package load

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/config/configtest"
)

const fullScenario = `kind: Scenario
version: relia/v1
metadata:
  name: checkout
  labels: {team: payments}
spec:
  baseURL: http://127.0.0.1:8080/
  headers: {Accept: application/json}
  timeout: 5s
  http: "1.1"
  tls: {insecure: true}
  vars: {user: alice}
  data: {file: users.csv, order: random}
  setup:
    name: login
    method: post
    path: /login
    body: '{"user":"{{user}}","email":"{{data.email}}"}'
    extract: {token: $.data.token}
    checks: [{status: [200]}]
  teardown: {method: DELETE, path: /session}
  requests:
    - name: profile
      weight: 80
      path: /users/{{randInt 1 1000}}?trace={{uuid}}
      headers: {Authorization: "Bearer {{token}}"}
      think: 1s
      thinkMax: 3s
      checks:
        - status: [200, 304]
        - maxLatency: 500ms
        - {jsonPath: "$.plan", equals: gold}
        - contains: '"id"'
    - name: pay
      weight: 20
      method: POST
      path: /pay
      body: '{"amount":{{randInt 1 99}},"card":"{{pick visa amex}}"}'
  load:
    vus: 50
    stages: [{duration: 10s, target: 100}, {duration: 20s, target: 100}]
  thresholds:
    http_req_duration: ["p(99)<500", "p(95)<200"]
    "http_req_duration{name:pay}":
      - {threshold: "p(99)<800", abortOnFail: true, delayAbortEval: 10s}
      - {threshold: "p(99)<500", window: 10s}
    http_req_failed: ["rate<0.01"]
    checks: ["rate>0.99"]
`

func writeScenario(t *testing.T, yaml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("email,plan\na@x.io,gold\nb@x.io,free\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestScenarioBuildsEverything(t *testing.T) {
	t.Parallel()
	test, err := LoadFile(writeScenario(t, fullScenario))
	if err != nil {
		t.Fatal(err)
	}
	if test.Name != "checkout" || test.Model != Closed || test.VUs.Max() != 100 || test.Duration() != 30*time.Second {
		t.Fatalf("test %+v", test)
	}
	if len(test.Steps) != 2 || test.Setup == nil || test.Teardown == nil || test.Setup.Method != "POST" {
		t.Fatalf("steps %+v setup %+v", test.Steps, test.Setup)
	}
	prof := test.Steps[0]
	if prof.Weight != 80 || prof.ThinkMin != time.Second || prof.ThinkMax != 3*time.Second || len(prof.Checks) != 4 || len(prof.Headers) != 2 {
		t.Fatalf("profile step %+v", prof)
	}
	if got := test.Steps[1].Name; got != "pay" || test.Client.Timeout != 5*time.Second || !test.Client.Insecure {
		t.Fatalf("pay %q client %+v", got, test.Client)
	}
	if len(test.Thresholds) != 6 {
		t.Fatalf("thresholds %+v", test.Thresholds)
	}
	var windowed, abort int
	for _, th := range test.Thresholds {
		if th.Window == 10*time.Second {
			windowed++
		}
		if th.AbortOnFail && th.DelayAbortEval == 10*time.Second && th.Tags["name"] == "pay" {
			abort++
		}
	}
	if windowed != 1 || abort != 1 {
		t.Fatalf("window and abort options lost: %+v", test.Thresholds)
	}
	env := &Env{Vars: test.vars, Rand: rand.New(rand.NewPCG(1, 1)), Row: test.data.rows[0]}
	if got := test.Setup.Body.Render(env); got != `{"user":"alice","email":"a@x.io"}` {
		t.Fatalf("setup body %s", got)
	}
	if got := prof.URL.Render(env); !strings.HasPrefix(got, "http://127.0.0.1:8080/users/") {
		t.Fatalf("url %s", got)
	}
}

func TestScenarioOpenModelDefaults(t *testing.T) {
	t.Parallel()
	test := buildTest(t, `kind: Scenario
version: relia/v1
spec:
  requests: [{path: "http://127.0.0.1:1/x"}]
  load: {rate: 250, duration: 4s}
`)
	if test.Model != Open || test.Schedule.Total() != 1000 || test.MaxInFlight != 250 || test.LateAfter != DefaultLateAfter {
		t.Fatalf("test %+v", test)
	}
	// Punctuality is the generator's own tolerance, not a threshold on the
	// service: no implicit threshold, 90% on time by default.
	if len(test.Thresholds) != 0 || test.MinOnTime != DefaultMinOnTime || DefaultMinOnTime != 0.9 {
		t.Fatalf("thresholds %+v, minOnTime %v", test.Thresholds, test.MinOnTime)
	}
	off := buildTest(t, `kind: Scenario
version: relia/v1
spec:
  requests: [{path: "http://127.0.0.1:1/x"}]
  load: {rate: 250, duration: 4s, minOnTime: 0}
`)
	if off.MinOnTime != 0 {
		t.Fatalf("minOnTime 0 should turn the generator's self-check off: %v", off.MinOnTime)
	}
}

func TestScenarioErrors(t *testing.T) {
	t.Parallel()
	base := func(requests, load, extra string) string {
		return "kind: Scenario\nversion: relia/v1\nspec:\n  baseURL: http://127.0.0.1:8080\n  requests:\n" + requests +
			"  load: " + load + "\n" + extra
	}
	ok := "    - path: /x\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown field", base("    - path: /x\n      wieght: 3\n", "{rate: 1, duration: 1s}", ""), "test.yaml:7:7: spec.requests[0].wieght: unknown field (did you mean weight?)"},
		{"malformed base URL", strings.Replace(base(ok, "{rate: 1, duration: 1s}", ""), "http://127.0.0.1:8080", "http://exa mple.com", 1), "test.yaml:4:12: spec.baseURL: malformed URL"},
		{"base URL without scheme", strings.Replace(base(ok, "{rate: 1, duration: 1s}", ""), "http://127.0.0.1:8080", "127.0.0.1:8080", 1), "spec.baseURL"},
		{"bad port", base("    - path: http://127.0.0.1:99999/x\n", "{rate: 1, duration: 1s}", ""), "port \"99999\" is not a port number"},
		{"relative path", base("    - path: x\n", "{rate: 1, duration: 1s}", ""), "test.yaml:6:13: spec.requests[0].path: \"x\": a path starts with /"},
		{"bad template", base("    - path: /x/{{randInt 5}}\n", "{rate: 1, duration: 1s}", ""), "test.yaml:6:13: spec.requests[0].path: template at offset 5: randInt takes two integers"},
		{"unknown variable", base("    - path: /x/{{tokn}}\n", "{rate: 1, duration: 1s}", ""), "unknown variable \"tokn\""},
		{"unclosed template", base("    - path: /x\n      body: '{{uuid'\n", "{rate: 1, duration: 1s}", ""), "spec.requests[0].body: template at offset 0"},
		{"bad JSON path", base("    - path: /x\n      checks: [{jsonPath: 'data.id'}]\n", "{rate: 1, duration: 1s}", ""), "spec.requests[0].checks[0].jsonPath: json path \"data.id\" at offset 0: must start with $"},
		{"bad extract path", base("    - path: /x\n      extract: {id: '$.a[x]'}\n", "{rate: 1, duration: 1s}", ""), "spec.requests[0].extract.id"},
		{"equals without path", base("    - path: /x\n      checks: [{equals: a}]\n", "{rate: 1, duration: 1s}", ""), "needs a jsonPath"},
		{"empty check", base("    - path: /x\n      checks: [{name: nothing}]\n", "{rate: 1, duration: 1s}", ""), "a check needs status"},
		{"bad status", base("    - path: /x\n      checks: [{status: [700]}]\n", "{rate: 1, duration: 1s}", ""), "700 is not an HTTP status"},
		{"zero rate", base(ok, "{rate: 0, duration: 1s}", ""), "test.yaml:7:16: spec.load.rate: 0: a rate must be > 0"},
		{"negative rate", base(ok, "{rate: -5, duration: 1s}", ""), "spec.load.rate: -5: a rate must be > 0"},
		{"zero VUs", base(ok, "{vus: 0, duration: 1s}", ""), "spec.load.vus: 0: want at least 1 VU"},
		{"both models", base(ok, "{rate: 5, vus: 5, duration: 1s}", ""), "give rate (open model) or vus (closed model), not both"},
		{"no model", base(ok, "{duration: 1s}", ""), "give rate (open model, requests per second) or vus"},
		{"no duration", base(ok, "{rate: 5}", ""), "a constant load needs a duration"},
		{"negative duration", base(ok, "{rate: 5, duration: -1s}", ""), "spec.load.duration: duration \"-1s\" is negative"},
		{"fractional VUs", base(ok, "{vus: 1, stages: [{duration: 1s, target: 2.5}]}", ""), "spec.load.stages[0].target: 2.5: VUs are whole numbers"},
		{"unknown preset", base(ok, "{rate: 5, duration: 10s, preset: smoke}", ""), "unknown preset \"smoke\""},
		{"preset and stages", base(ok, "{rate: 5, preset: load, stages: [{duration: 1s, target: 1}]}", ""), "a preset makes the stages"},
		{"stress without thresholds", base(ok, "{rate: 5, duration: 10s, preset: stress}", ""), "the stress preset needs thresholds"},
		{"unknown metric", base(ok, "{rate: 5, duration: 1s}", "  thresholds: {http_req_duraton: [\"p(99)<5\"]}\n"), "spec.thresholds.http_req_duraton[0]: unknown metric \"http_req_duraton\""},
		{"unknown request name", base(ok, "{rate: 5, duration: 1s}", "  thresholds: {\"http_req_duration{name:login}\": [\"p(99)<5\"]}\n"), "no request is named \"login\""},
		{"bad expression", base(ok, "{rate: 5, duration: 1s}", "  thresholds: {http_req_failed: [\"p(99)<5\"]}\n"), "http_req_failed has no aggregation \"p\""},
		{"window too long", base(ok, "{rate: 5, duration: 1s}", "  thresholds: {http_req_failed: [{threshold: rate<0.1, window: 1m}]}\n"), "window 1m0s is longer than the test"},
		{"unknown threshold option", base(ok, "{rate: 5, duration: 1s}", "  thresholds: {http_req_failed: [{threshold: rate<0.1, abortOnFial: true}]}\n"), "abortOnFial: unknown field (did you mean abortOnFail?)"},
		{"lag in the closed model", base(ok, "{vus: 5, duration: 1s}", "  thresholds: {schedule_lag: [\"p(99)<5\"]}\n"), "schedule_lag is a metric of the open model"},
		{"bad http version", base(ok, "{rate: 5, duration: 1s}", "  http: \"3\"\n"), "spec.http: \"3\""},
		{"missing data file", base(ok, "{rate: 5, duration: 1s}", "  data: {file: nope.csv}\n"), "spec.data: data file: open"},
		{"no requests", base("", "{rate: 5, duration: 1s}", ""), "spec.requests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			scs, err := ParseScenarios("test.yaml", []byte(tc.yaml))
			if err == nil {
				_, err = scs[0].Build()
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing\n  %s\ngot\n  %v", tc.want, err)
			}
		})
	}
}

func TestPresetsShapeTheLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		preset string
		// rates at 0%, 25%, 50%, 75%, 99.9% of the duration
		want [5]float64
	}{
		{PresetLoad, [5]float64{0, 100, 100, 100, 1}},
		{PresetSoak, [5]float64{0, 100, 100, 100, 2}},
		{PresetSpike, [5]float64{10, 10, 100, 10, 10}},
		{PresetBreakpoint, [5]float64{0, 25, 50, 75, 99.9}},
		{PresetStress, [5]float64{0, 30, 50, 80, 100}},
	} {
		start, stages, err := presetStages(tc.preset, 100, 100*time.Second, Open)
		if err != nil {
			t.Fatal(err)
		}
		rs := make([]RateStage, len(stages))
		for i, s := range stages {
			rs[i] = RateStage{Duration: s.Duration, Target: s.Target}
		}
		sched, err := NewSchedule(start, rs)
		if err != nil {
			t.Fatal(err)
		}
		if sched.Duration() != 100*time.Second {
			t.Errorf("%s: duration %s", tc.preset, sched.Duration())
		}
		for i, at := range []time.Duration{0, 25 * time.Second, 50 * time.Second, 75 * time.Second, 99900 * time.Millisecond} {
			if got := sched.RateAt(at); got < tc.want[i]-1 || got > tc.want[i]+1 {
				t.Errorf("%s: rate at %s is %.1f, want %.1f", tc.preset, at, got, tc.want[i])
			}
		}
	}
}

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, filepath.Join("..", "docs", "schema", "scenario.json"), got)
	for _, want := range []string{`"const": "Scenario"`, `"baseURL"`, `"abortOnFail"`, `"maxInFlight"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

func FuzzParseScenarios(f *testing.F) {
	f.Add(fullScenario)
	f.Add("kind: Scenario\nversion: relia/v1\nspec:\n  requests: [{path: /x}]\n  load: {rate: 1, duration: 1s}\n")
	f.Add("kind: Scenario\nversion: relia/v1\nspec: {thresholds: {checks: [{threshold: 'rate>1', window: 1s}]}}\n")
	f.Add("kind: Scenario\nversion: relia/v1\nspec:\n  baseURL: http://h\n  journeys: [{name: j, redirects: {max: 2}, setup: [{request: {path: /l, extract: {t: $.t}}}], steps: [{group: g, steps: [{loop: 2, steps: [{request: {path: /x}}]}]}, {if: {var: t, notEquals: ''}, think: 1s}]}]\n  load: {vus: 1, duration: 1s}\n  thresholds: {'group_duration{group:::g}': ['p(95)<1']}\n")
	f.Fuzz(func(t *testing.T, src string) {
		scs, err := ParseScenarios("fuzz.yaml", []byte(src))
		if err != nil {
			return
		}
		for _, s := range scs {
			// Building must not panic; a data file it names is not there.
			s.Spec.Data = nil
			s.Spec.TLS.CAFile = ""
			_, _ = s.Build()
		}
	})
}

// TestExamplesBuild keeps the published examples valid.
func TestExamplesBuild(t *testing.T) {
	t.Parallel()
	paths, err := filepath.Glob(filepath.Join("..", "examples", "scenario*.yaml"))
	paths = append(paths, filepath.Join("..", "examples", "journeys.yaml"))
	if err != nil || len(paths) < 3 {
		t.Fatalf("examples: %v %v", paths, err)
	}
	for _, p := range paths {
		if _, err := LoadFile(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	job, err := os.ReadFile(filepath.Join("..", "deploy", "k8s", "load-indexed-job.yaml"))
	if err != nil || !strings.Contains(string(job), `--segment=$(JOB_COMPLETION_INDEX)/$(SEGMENTS)`) || !strings.Contains(string(job), "completionMode: Indexed") {
		t.Fatalf("the Indexed Job example should pass its index as --segment: %v", err)
	}
}
