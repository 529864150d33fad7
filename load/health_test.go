package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
)

// lateClock is a clock whose timers fire delay late: the pacer of a
// generator starved of CPU, made to order. Timers never fire early, so a
// run on it sends its arrivals at least as late as the delay makes them,
// whatever else the machine is doing.
type lateClock struct {
	clock.Clock
	delay time.Duration
}

func (c lateClock) NewTimer(d time.Duration) clock.Timer {
	return lateTimer{c.Clock.NewTimer(d + c.delay), c.delay}
}

type lateTimer struct {
	clock.Timer
	delay time.Duration
}

func (t lateTimer) Reset(d time.Duration) bool { return t.Timer.Reset(d + t.delay) }

// TestGeneratorJudgesItselfFirst runs one test twice: on a clock that
// holds the pacer back 2s, where every arrival but the first leaves over
// lateAfter late, and on the real clock. The late run is inconclusive,
// with the reason, and its latency threshold (which the lag fails) is
// reported but not judged; the same run on time passes.
func TestGeneratorJudgesItselfFirst(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	// 20 arrivals; the late clock sends arrival 0 on time and the others
	// between 1.1s and 2s late. MinLateToJudge of 20 arrivals over 500ms
	// late is far more than a busy machine makes on time.
	test := buildTest(t, `kind: Scenario
version: relia/v1
metadata: {name: paced}
spec:
  requests: [{path: "`+srv.URL+`/"}]
  load: {rate: 20, duration: 1s, lateAfter: 500ms}
  thresholds:
    http_req_duration: ["p(95)<1000"]
`)
	for _, tc := range []struct {
		name  string
		clock clock.Clock
		want  string
	}{
		{"pacer held back", lateClock{clock.Real(), 2 * time.Second}, Inconclusive},
		{"on time", nil, Passed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := test.Run(context.Background(), RunOptions{Clock: tc.clock})
			if err != nil {
				t.Fatal(err)
			}
			j := res.Judge()
			if j.Result != tc.want {
				t.Fatalf("result %s, want %s: %q\ngenerator %+v", j.Result, tc.want, j.Reasons, j.Generator)
			}
			if tc.want == Passed {
				if !j.Generator.Conclusive || j.Generator.Sent != 20 || len(j.Reasons) != 0 {
					t.Errorf("generator %+v, reasons %q", j.Generator, j.Reasons)
				}
				return
			}
			h := j.Generator
			if h.Conclusive || h.Late < 19 || h.Sent != 20 || h.LagP99 < time.Second {
				t.Errorf("generator %+v: want 19 or 20 of 20 sent late, lag p99 over 1s", h)
			}
			if !strings.HasPrefix(h.Reason, "the generator sent ") || !strings.Contains(h.Reason, "of requests more than 500ms late") ||
				!strings.HasSuffix(h.Reason, "; "+LoadAdvice) {
				t.Errorf("reason %q", h.Reason)
			}
			// The lag fails the latency threshold: reported, not judged.
			if len(j.Thresholds) != 1 || j.Thresholds[0].Passed || len(j.Reasons) != 2 ||
				!strings.HasPrefix(j.Reasons[1], "not judged: threshold http_req_duration p(95)<1000 failed: ") {
				t.Errorf("thresholds %+v, reasons %q", j.Thresholds, j.Reasons)
			}
			var sb strings.Builder
			if err := res.WriteSummary(&sb, j); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"FAIL (not judged)  http_req_duration p(95)<1000", "\nresult: INCONCLUSIVE\n  the generator sent ", "generator: "} {
				if !strings.Contains(sb.String(), want) {
					t.Errorf("summary lacks %q:\n%s", want, sb.String())
				}
			}
			var buf bytes.Buffer
			if err := res.WriteJSON(&buf); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Result    string   `json:"result"`
				Reasons   []string `json:"reasons"`
				Generator struct {
					Health Health `json:"health"`
				} `json:"generator"`
			}
			if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Result != Inconclusive || doc.Generator.Health.Reason != h.Reason || doc.Generator.Health.Late != h.Late {
				t.Errorf("results file: result %q, generator %+v", doc.Result, doc.Generator.Health)
			}
			// Read back, the result judges its generator the same way.
			back := &Result{}
			if err := back.UnmarshalJSON(buf.Bytes()); err != nil {
				t.Fatal(err)
			}
			if got := back.Judge(); got.Result != Inconclusive || got.Generator.Late != h.Late {
				t.Errorf("read back: %+v", got)
			}
		})
	}
}

// TestHealthCause checks the cause Health names for each set of CPU
// figures.
func TestHealthCause(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 100 {
		lag := time.Millisecond
		if i < 20 {
			lag = 50 * time.Millisecond
		}
		rec.Record(outcome.Outcome{Start: t0.Add(time.Duration(i) * 10 * time.Millisecond), Latency: lag})
	}
	lag := rec.Total()
	for _, tc := range []struct {
		name string
		g    GeneratorStats
		want string
	}{
		{"saturated", GeneratorStats{CPU: 1900 * time.Millisecond, Wall: time.Second, Cores: 2, HasCPU: true}, "its CPU was saturated (relia used 1.90 of 2 cores)"},
		{"oversubscribed", GeneratorStats{CPU: 300 * time.Millisecond, Wall: time.Second, Cores: 2, HasCPU: true, Stall: 800 * time.Millisecond, HasStall: true},
			"the host's CPUs were oversubscribed: runnable tasks waited for a CPU 80.00% of the time (/proc/pressure/cpu) while relia used 0.30 of 2 cores"},
		{"neither", GeneratorStats{CPU: 300 * time.Millisecond, Wall: time.Second, Cores: 2, HasCPU: true, Stall: 10 * time.Millisecond, HasStall: true},
			"neither relia's CPU nor the host's was saturated (relia used 0.30 of 2 cores, tasks waited for a CPU 1.00% of the time)"},
		{"no pressure", GeneratorStats{CPU: 300 * time.Millisecond, Wall: time.Second, Cores: 2, HasCPU: true},
			"the host does not report CPU pressure (/proc/pressure/cpu)"},
		{"nothing known", GeneratorStats{Wall: time.Second}, "the cause is unknown"},
	} {
		h := judgeHealth(Open, lag, 0, 10*time.Millisecond, 0.9, tc.g)
		if h.Conclusive || h.Late != 20 || !strings.Contains(h.Reason, "the generator sent 20.00% of requests more than 10ms late (20 of 100") ||
			!strings.Contains(h.Reason, tc.want) {
			t.Errorf("%s: %+v\nwant a reason with %q", tc.name, h, tc.want)
		}
	}
	if h := judgeHealth(Open, lag, 0, 10*time.Millisecond, 0.75, GeneratorStats{}); !h.Conclusive {
		t.Errorf("20%% late within a tolerance of 25%%: %+v", h)
	}
	if h := judgeHealth(Closed, lag, 0, 10*time.Millisecond, 0.9, GeneratorStats{}); !h.Conclusive {
		t.Errorf("the closed model has no schedule to judge: %+v", h)
	}
	if h := judgeHealth(Open, lag, 0, 10*time.Millisecond, 0, GeneratorStats{}); !h.Conclusive {
		t.Errorf("minOnTime 0 turns the self-check off: %+v", h)
	}
}

func TestProgressLine(t *testing.T) {
	t.Parallel()
	p := Progress{Elapsed: 1200 * time.Millisecond, Duration: 4 * time.Second, Requests: 9, Failed: 1, Dropped: 2, Late: 3,
		RPS: 9, P99: 1234 * time.Microsecond, Active: 1}
	if got, want := p.Line(), "1s/4s  9.0 req/s  p99 1.23ms  9 sent, 1 failed, 2 dropped, 3 late  active 1"; got != want {
		t.Errorf("line %q, want %q", got, want)
	}
}

// TestNoConnectionIsDropped: a request that found every connection of
// the pool busy until its timeout was never sent: it is dropped, counted
// with the generator's health, not failed as the service's.
func TestNoConnectionIsDropped(t *testing.T) {
	t.Parallel()
	s := &Step{}
	res := &StepResult{Err: fmt.Errorf("%w: all 4 connections to 127.0.0.1:1 stayed busy", errNoConn)}
	if c := classify(s, res); c != outcome.ClassDropped || c.RequestFailed() {
		t.Errorf("class %s, want dropped (not a failed request)", c)
	}
	if c := classify(s, &StepResult{Err: protocolError(errors.New("malformed status line"), 12)}); c != outcome.ClassProtocol {
		t.Errorf("an unreadable answer: class %s, want protocol", c)
	}
	if c := classify(s, &StepResult{Err: protocolError(errors.New("boom"), 0)}); c != outcome.ClassOther {
		t.Errorf("a failure with nothing received: class %s, want other", c)
	}
}
