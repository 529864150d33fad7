package experiment

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/config/configtest"
	"github.com/relia-dev/relia/internal/shop"
)

// exp writes an experiment document around spec lines (indented by two
// spaces), followed by an SLO document the experiment can name by id.
func exp(spec string) string {
	return "kind: Experiment\nversion: relia/v1\nmetadata:\n  name: e\nspec:\n  seed: 7\n" + spec +
		"---\nkind: SLO\nversion: relia/v1\nmetadata:\n  name: availability\nspec:\n  service: api\n  objective: 99.9%\n  sli:\n    availability: {goodClasses: [ok]}\n"
}

// A target, an SLO and two phases that the error cases change one part of.
const (
	target   = "  target: {url: 'http://127.0.0.1:8080', services: [{name: api, command: [./api], replicas: 2, port: 9001}]}\n"
	slos     = "  slos: [{id: api-availability}]\n"
	proxies  = "  proxies: [{name: db, upstream: '127.0.0.1:5432'}]\n"
	baseline = "    - {name: baseline, duration: 10s, load: {rate: 10}}\n"
)

func TestParseShopPlan(t *testing.T) {
	t.Parallel()
	p, err := ReadFile(filepath.Join("testdata", "shop.yaml"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := p.Text(&b); err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, filepath.Join("testdata", "shop.plan"), []byte(b.String()))
	if p.Total.Seconds() != 90 || len(p.Phases) != 5 || len(p.Faults) != 3 || p.Baseline != "baseline" {
		t.Errorf("total %v, %d phases, %d faults, baseline %q; want 1m30s, 5, 3, baseline", p.Total, len(p.Phases), len(p.Faults), p.Baseline)
	}
	// The faults are in start order with offsets from the run's start:
	// payments-degraded starts at 35s, payment-errors 5s into it.
	want := []struct {
		name       string
		start, end float64
	}{{"processor-latency", 35, 55}, {"payment-errors", 40, 50}, {"kill-catalog", 55, 70}}
	for i, w := range want {
		f := p.Faults[i]
		if f.Name != w.name || f.Start.Seconds() != w.start || f.End.Seconds() != w.end {
			t.Errorf("fault %d: %s %v-%v, want %s %vs-%vs", i, f.Name, f.Start, f.End, w.name, w.start, w.end)
		}
	}
	if g := p.Faults[1].Gateway; g == nil || float64(g.Percentage) != 0.1 {
		t.Errorf("payment-errors gateway fault %+v, want 10%%", g)
	}
	if ids := []string{p.SLOs[0].ID, p.SLOs[1].ID}; !slices.Equal(ids, []string{"shop-availability", "shop-latency"}) {
		t.Errorf("SLOs %v", ids)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"scenario.yaml": "kind: Scenario\nversion: relia/v1\nmetadata: {name: browse}\n",
		"slos.yaml":     "kind: SLO\nversion: relia/v1\nmetadata: {name: availability}\nspec: {service: web, objective: 99%, sli: {availability: {goodClasses: [ok]}}}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	phases := func(lines ...string) string { return "  phases:\n" + strings.Join(lines, "") }
	cases := []struct{ name, src string }{
		{"unknown field", exp(target + slos + phases(baseline) + "  phasez: []\n")},
		{"unknown baseline phase", exp(target + slos + "  baseline: warmup\n" + phases(baseline))},
		{"unknown phase in an abort condition", exp(target + slos + phases(baseline) +
			"  abort: [{burnRate: {slo: api-availability, above: 10}, window: 5s, phases: [spike]}]\n")},
		{"phase named twice", exp(target + slos + phases(baseline, baseline))},
		{"zero duration", exp(target + slos + phases("    - {name: baseline, duration: 0s, load: {rate: 10}}\n"))},
		{"negative duration", exp(target + slos + phases("    - {name: baseline, duration: -5s, load: {rate: 10}}\n"))},
		{"no phases", exp(target + slos + "  phases: []\n")},
		{"overlapping faults on one proxy", exp(target + slos + proxies + phases(baseline,
			"    - name: degraded\n      duration: 30s\n      load: {rate: 10}\n      faults:\n",
			"        - {name: slow, toxic: {proxy: db, type: latency, attributes: {latency: 100}}}\n",
			"        - {name: cut, start: 10s, duration: 5s, toxic: {proxy: db, type: reset_peer}}\n"))},
		{"overlapping faults on one service", exp(target + slos + phases(baseline,
			"    - name: degraded\n      duration: 30s\n      load: {rate: 10}\n      faults:\n",
			"        - {name: kill, duration: 20s, process: {action: kill, service: api, replica: 0}}\n",
			"        - {name: pause, start: 15s, process: {action: pause, service: api, replica: 1}}\n"))},
		{"missing SLO reference", exp(target + "  slos: [{id: api-latency}]\n" + phases(baseline))},
		{"missing SLO file", exp(target + "  slos: [{file: nowhere.yaml}]\n" + phases(baseline))},
		{"missing SLO in a file", exp(target + "  slos: [{file: slos.yaml, id: api-latency}]\n" + phases(baseline))},
		{"no SLOs", exp(target + "  slos: []\n" + phases(baseline))},
		{"invalid inline SLO", exp(target + "  slos: [{inline: {metadata: {name: x}, spec: {service: api, objective: 100%, sli: {availability: {goodClasses: [ok]}}}}}]\n" + phases(baseline))},
		{"abort window longer than the run", exp(target + slos + phases(baseline) +
			"  abort: [{burnRate: {slo: api-availability, above: 10}, window: 1m}]\n")},
		{"abort for as long as the run", exp(target + slos + phases(baseline) +
			"  abort: [{threshold: 'http_req_failed:rate<0.1', window: 5s, for: 10s}]\n")},
		{"abort with an unknown SLO and no rate", exp(target + slos + phases(baseline) +
			"  abort: [{burnRate: {slo: api-latency, above: 0}}]\n")},
		{"abort with both kinds", exp(target + slos + phases(baseline) +
			"  abort: [{burnRate: {slo: api-availability, above: 10}, threshold: 'http_req_failed:rate<0.1'}]\n")},
		{"bad thresholds", exp(target + slos + phases(baseline) +
			"  thresholds: {http_req_duration: ['p(99)<<500'], vus: ['value<10'], 'http_req_failed{name:x}': ['rate<0.1']}\n")},
		{"no target", exp("  target: {}\n" + slos + phases(baseline))},
		{"bad target url", exp("  target: {url: '127.0.0.1:8080'}\n" + slos + phases(baseline))},
		{"bad services", exp("  target:\n    services:\n      - {name: a, command: [x]}\n      - {name: a, shop: {}, command: [y]}\n      - {name: b}\n" + slos + phases(baseline))},
		{"fault beyond its phase", exp(target + slos + proxies + phases(
			"    - name: degraded\n      duration: 10s\n      load: {rate: 10}\n      faults:\n",
			"        - {name: slow, start: 5s, duration: 10s, toxic: {proxy: db, type: latency, attributes: {latency: 100}}}\n",
			"        - {name: late, start: 10s, toxic: {proxy: db, type: timeout}}\n"))},
		{"bad faults", exp(target + slos + proxies + phases(
			"    - name: degraded\n      duration: 10s\n      load: {rate: 10}\n      faults:\n",
			"        - {name: a, toxic: {proxy: cache, type: latency}}\n",
			"        - {name: b, toxic: {proxy: db, type: lag}}\n",
			"        - {name: c, toxic: {proxy: db, type: latency, attributes: {latncy: 100}}}\n",
			"        - {name: d, gateway: {route: pay}}\n",
			"        - {name: e, gateway: {route: pay2, abortStatus: 99}}\n",
			"        - {name: f, process: {action: explode, service: web}}\n",
			"        - {name: g, process: {action: kill, service: api, replica: 2}}\n",
			"        - {name: h}\n",
			"        - {name: h, toxic: {proxy: db, type: http}}\n",
			"        - {name: i, gateway: {route: pay, stallAfterEvents: -1, errorAfterEvents: 2, errorFormat: azure}}\n"))},
		{"bad load", exp(target + slos + phases(
			"    - {name: a, duration: 10s, load: {rate: 10, vus: 5}}\n",
			"    - {name: b, duration: 10s, load: {stages: [{duration: 8s, target: 10}, {duration: 5s, target: -1}]}}\n",
			"    - {name: c, duration: 10s}\n",
			"    - {name: d, duration: 10s, load: {scenario: scenario.yaml#checkout}}\n",
			"    - {name: e, duration: 10s, load: {scenario: missing.yaml}}\n"))},
		{"baseline with faults", exp(target + slos + proxies + "  baseline: degraded\n" + phases(
			"    - name: degraded\n      duration: 10s\n      load: {rate: 10}\n      faults:\n",
			"        - {name: slow, toxic: {proxy: db, type: latency, attributes: {latency: 100}}}\n"))},
		{"bad fault server and lease", exp(target + slos + "  faultServer: localhost:8474\n  faultLease: 1s\n" + phases(baseline))},
		{"bad generator tolerance", exp(target + slos + phases(baseline) + "  generator: {lateAfter: -1s, minOnTime: 120%}\n")},
		{"provider faults without an ai stack", exp(target + slos + phases(baseline,
			"    - name: degraded\n      duration: 10s\n      load: {rate: 10}\n      faults:\n",
			"        - {name: slow, provider: {provider: alpha, kind: slow_first_token, delay: 1s}}\n"))},
		{"bad ai stack, llm loads, provider faults and measures", exp("  target: {services: [{name: ai, ai: {quotaTokens: -1}, port: 9000}]}\n" +
			"  slos: [{id: api-availability, measure: llm_time_to_first_token}, {inline: {metadata: {name: x}, spec: {service: ai, objective: 99%, sli: {latency: {threshold: 1s}}}}, measure: ttft}]\n" +
			phases("    - {name: a, duration: 10s, load: {rate: 2, llm: {api: grpc, path: ask, maxTokens: -1, users: [''], expectedStatuses: [99]}}}\n",
				"    - {name: b, duration: 10s, load: {vus: 2, stages: [{duration: 5s, target: 4}], llm: {}}}\n",
				"    - name: c\n      duration: 10s\n      load: {rate: 2, llm: {}}\n      faults:\n",
				"        - {name: f1, provider: {provider: gamma, kind: stall}}\n",
				"        - {name: f2, provider: {provider: beta, kind: status, status: 418}}\n",
				"        - {name: f3, provider: {provider: beta, kind: vanish}}\n") +
			"  abort: [{burnRate: {slo: api-availability, above: 10}}]\n")},
		{"two experiments", exp(target+slos+phases(baseline)) + "---\n" + exp(target+slos+phases(baseline))},
		{"no experiment", "kind: SLO\nversion: relia/v1\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		_, err := Parse(filepath.Join(dir, "e.yaml"), []byte(tc.src), Options{})
		fmt.Fprintf(&out, "== %s\n", tc.name)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		text := strings.ReplaceAll(err.Error(), dir, "DIR")
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "DIR/e.yaml:") {
				t.Errorf("%s: error line %q does not name the file", tc.name, line)
			}
		}
		var ce *config.Error
		if !errors.As(err, &ce) && tc.name != "no experiment" {
			t.Errorf("%s: %v is not a *config.Error", tc.name, err)
		}
		fmt.Fprintf(&out, "%s\n", text)
	}
	configtest.Golden(t, filepath.Join("testdata", "errors.golden"), []byte(out.String()))
}

// TestParseSeed: the option's seed wins over the spec's, an experiment
// without one gets a random seed, and the seed drives every decision.
func TestParseSeed(t *testing.T) {
	t.Parallel()
	src := []byte(exp(target + slos + phases2))
	noSeed := []byte(strings.Replace(string(src), "  seed: 7\n", "", 1))
	seed := func(v uint64) *uint64 { return &v }
	cases := []struct {
		name     string
		src      []byte
		opts     Options
		want     uint64
		wantFrom string
	}{
		{"spec", src, Options{}, 7, "spec"},
		{"option", src, Options{Seed: seed(8)}, 8, "option"},
		{"random", noSeed, Options{RandomSeed: func() uint64 { return 99 }}, 99, "random"},
	}
	for _, tc := range cases {
		p, err := Parse("e.yaml", tc.src, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if p.Seed != tc.want || p.SeedFrom != tc.wantFrom {
			t.Errorf("%s: seed %d from %s, want %d from %s", tc.name, p.Seed, p.SeedFrom, tc.want, tc.wantFrom)
		}
	}
}

// phases2 has a process fault without a replica, so the plan chooses one
// from the seed.
const phases2 = "  phases:\n" + baseline +
	"    - name: lost\n      duration: 10s\n      load: {rate: 10}\n      faults:\n" +
	"        - {name: kill, process: {action: kill, service: api}}\n"

// TestSameSeedSameDecisions: two plans from one seed make the same
// decisions; another seed changes them.
func TestSameSeedSameDecisions(t *testing.T) {
	t.Parallel()
	src := []byte(exp(target + slos + phases2))
	plan := func(seed uint64) *Plan {
		p, err := Parse("e.yaml", src, Options{Seed: &seed})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, c := plan(1), plan(1), plan(2)
	if !slices.Equal(a.Decisions, b.Decisions) {
		t.Errorf("one seed, two decision lists:\n%v\n%v", a.Decisions, b.Decisions)
	}
	if len(a.Decisions) < 5 {
		t.Errorf("decisions %v: want the seed, the fault server's, two phases' and the fault's", a.Decisions)
	}
	differ := 0
	for i := range a.Decisions {
		if a.Decisions[i].What != c.Decisions[i].What {
			t.Fatalf("decision %d is %q for one seed and %q for another", i, a.Decisions[i].What, c.Decisions[i].What)
		}
		if a.Decisions[i].Value != c.Decisions[i].Value {
			differ++
		}
	}
	if differ < len(a.Decisions)-1 { // the replica may coincide
		t.Errorf("seeds 1 and 2 share %d of %d decisions", len(a.Decisions)-differ, len(a.Decisions))
	}
	// Over many seeds, the replica choice hits both replicas.
	seen := map[int]bool{}
	for s := range uint64(32) {
		seen[plan(s).Faults[0].Replica] = true
	}
	if !seen[0] || !seen[1] || len(seen) != 2 {
		t.Errorf("replicas chosen over 32 seeds: %v, want 0 and 1", seen)
	}
}

// FuzzParse feeds arbitrary bytes to the experiment loader: it must not
// panic, every error must name the file, and an accepted experiment must
// have a plan with positive phases and faults inside them.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"shop.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(exp(target + slos + phases2)))
	f.Add([]byte(exp(target + slos + proxies + "  phases:\n" + baseline +
		"    - name: degraded\n      duration: 30s\n      load: {rate: 10}\n      faults:\n" +
		"        - {name: slow, toxic: {proxy: db, type: latency, attributes: {latency: 100}}}\n" +
		"  abort: [{threshold: 'http_req_failed:rate<0.1', window: 5s}]\n")))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data, Options{Dir: dir, RandomSeed: func() uint64 { return 1 }})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		var prev PlannedPhase
		for i, ph := range p.Phases {
			if ph.End <= ph.Start || (i > 0 && ph.Start != prev.End) {
				t.Fatalf("phase %s runs %v-%v after %v", ph.Name, ph.Start, ph.End, prev.End)
			}
			prev = ph
		}
		for _, fl := range p.Faults {
			ph, _ := p.Phase(fl.Phase)
			if fl.Start < ph.Start || fl.End > ph.End || fl.End <= fl.Start {
				t.Fatalf("fault %s runs %v-%v outside its phase %v-%v", fl.Name, fl.Start, fl.End, ph.Start, ph.End)
			}
		}
		if err := p.Text(new(strings.Builder)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestJSONSchema(t *testing.T) {
	t.Parallel()
	got, err := JSONSchema()
	if err != nil {
		t.Fatal(err)
	}
	// The published schema is the golden file, so docs/ cannot fall behind.
	configtest.Golden(t, filepath.Join("..", "docs", "schema", "experiment.json"), got)
	for _, want := range []string{`"const": "Experiment"`, `"phases"`, `"burnRate"`, `"objective"`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

// TestShopRoutesAreTheGatewayConfigs checks that the routes gateway
// faults may name at parse time are those of the gateway the run starts
// in front of the shop.
func TestShopRoutesAreTheGatewayConfigs(t *testing.T) {
	t.Parallel()
	sh, err := shop.Start(t.Context(), shop.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	cfg, err := gateway.Parse("shop", sh.GatewayConfig())
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range cfg.Spec.Routes {
		routes = append(routes, r.Name)
	}
	if !slices.Equal(routes, shopRoutes) {
		t.Errorf("the shop's gateway has routes %v, the parser knows %v", routes, shopRoutes)
	}
}
