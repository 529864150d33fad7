package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// shopServer is a small API: POST /login returns a token, and /profile
// and /pay answer only with it.
func shopServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var unauthorized atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			body, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(body), `"alice"`) {
				http.Error(w, "who?", http.StatusForbidden)
				return
			}
			_, _ = io.WriteString(w, `{"data":{"token":"t0k3n"}}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer t0k3n" {
			unauthorized.Add(1)
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasPrefix(r.URL.Path, "/profile/"):
			_, _ = io.WriteString(w, `{"id":"`+strings.TrimPrefix(r.URL.Path, "/profile/")+`","plan":"gold"}`)
		case r.URL.Path == "/pay" && r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"state":"paid"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &unauthorized
}

func shopScenario(base, load string) string {
	return `kind: Scenario
version: relia/v1
metadata: {name: shop}
spec:
  baseURL: ` + base + `
  vars: {user: alice}
  setup:
    name: login
    method: POST
    path: /login
    body: '{"user":"{{user}}"}'
    extract: {token: $.data.token}
  headers: {Authorization: "Bearer {{token}}"}
  requests:
    - name: profile
      weight: 80
      path: /profile/{{randInt 1 1000}}
      checks:
        - status: [200]
        - jsonPath: $.plan
          equals: gold
    - name: pay
      weight: 20
      method: POST
      path: /pay
      body: '{"amount":{{randInt 1 99}}}'
      checks: [{status: [201]}]
  load:
` + load + `
  thresholds:
    http_req_failed: ["rate<0.01"]
    checks: ["rate>0.99"]
    "http_req_duration{name:pay}": ["p(99)<2000"]
`
}

func buildTest(t testing.TB, yaml string) *Test {
	t.Helper()
	scs, err := ParseScenarios("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	test, err := scs[0].Build()
	if err != nil {
		t.Fatal(err)
	}
	return test
}

func TestRunSetupTokenAndWeightedMix(t *testing.T) {
	t.Parallel()
	srv, unauthorized := shopServer(t)
	test := buildTest(t, shopScenario(srv.URL, "    rate: 500\n    duration: 1s\n    lateAfter: 1s\n"))
	if err := test.Preflight(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Setup == nil || res.Setup.Status != 200 || res.Setup.Error != "" {
		t.Fatalf("setup: %+v", res.Setup)
	}
	if n := unauthorized.Load(); n != 0 {
		t.Fatalf("%d requests went without the token extracted in setup", n)
	}
	total := res.Requests.Total()
	if total.Total != 500 || total.ByClass[outcome.ClassOK] != 500 {
		t.Fatalf("want 500 ok requests, got %d: %v", total.Total, total.ByClass)
	}
	// 80/20 weights: the count of pay requests is binomial(500, 0.2),
	// mean 100 and standard deviation 8.9; five deviations bound it.
	pay := res.ByName["pay"].Total().Total
	profile := res.ByName["profile"].Total().Total
	if pay+profile != 500 || math.Abs(float64(pay)-100) > 5*math.Sqrt(500*0.2*0.8) {
		t.Fatalf("pay %d, profile %d: not 20/80 of 500", pay, profile)
	}
	if codes := res.Requests.StatusCodes(); codes[200] != profile || codes[201] != pay {
		t.Fatalf("status codes %v", codes)
	}
	if c := res.Checks.Total(); c.Total != 2*profile+pay || c.ByClass[outcome.ClassOK] != c.Total {
		t.Fatalf("checks %d (%v), want %d passed", c.Total, c.ByClass, 2*profile+pay)
	}
	j := res.Judge()
	if j.Result != Passed || !AllPassed(j.Thresholds) || len(j.Thresholds) != 3 {
		t.Fatalf("judgement %+v", j)
	}
	// The run's span, which its rates divide by, is the span its file
	// gives back to the tools that read it, to the nanosecond.
	var file bytes.Buffer
	if err := res.WriteJSON(&file); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := back.UnmarshalJSON(file.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got, want := back.End.Sub(back.Start), res.End.Sub(res.Start); got != want || res.Start != res.Start.Round(0) || res.End != res.End.Round(0) {
		t.Errorf("the run spans %s, its file %s (start and end on the wall clock alone: %v, %v)", want, got, res.Start == res.Start.Round(0), res.End == res.End.Round(0))
	}
	var sb strings.Builder
	if err := res.WriteSummary(&sb, j); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"profile", "pay", "p99.9", "service time", "schedule lag", "thresholds:", "pass  http_req_failed rate<0.01"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sb.String())
		}
	}
}

func TestRunFailsChecksAndSetup(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"plan":"free"}`)
	}))
	defer srv.Close()
	yaml := `kind: Scenario
version: relia/v1
spec:
  baseURL: ` + srv.URL + `
  requests:
    - path: /x
      checks: [{jsonPath: $.plan, equals: gold}]
  load: {vus: 2, duration: 300ms}
  thresholds:
    checks: ["rate>0.99"]
    http_req_failed: ["rate<0.01"]
`
	res, err := buildTest(t, yaml).Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum := res.Requests.Total()
	if sum.Total == 0 || sum.ByClass[outcome.ClassCheck] != sum.Total {
		t.Fatalf("every request should fail its check: %v", sum.ByClass)
	}
	v := res.Evaluate()
	// A failed check is not a failed request: checks fails, http_req_failed holds.
	if v[0].Passed || v[0].Ref != "checks" || !v[1].Passed {
		t.Fatalf("verdict %+v", v)
	}

	withSetup := strings.Replace(yaml, "  requests:", "  setup: {path: /login}\n  requests:", 1)
	_, err = buildTest(t, withSetup).Run(context.Background(), RunOptions{})
	if err == nil || !strings.Contains(err.Error(), "setup failed") || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("want a setup error naming the status, got %v", err)
	}
}

// TestSetupRetriesTransientFailures: a setup request answered 503 twice
// is sent again and the run goes on with what the third answer gave; one
// refused with 401 is not sent again.
func TestSetupRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	var logins, refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/login":
			if logins.Add(1) <= 2 {
				http.Error(w, `{"error":"busy"}`, http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, `{"token":"t0k"}`)
		case "/refused":
			refused.Add(1)
			http.Error(w, "no", http.StatusUnauthorized)
		default:
			if r.Header.Get("Authorization") != "Bearer t0k" {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(srv.Close)
	scenario := func(setupPath string) string {
		return `kind: Scenario
version: relia/v1
spec:
  baseURL: ` + srv.URL + `
  setup: {path: ` + setupPath + `, extract: {token: $.token}}
  requests: [{path: /, headers: {Authorization: "Bearer {{token}}"}}]
  load: {rate: 20, duration: 500ms}
`
	}
	res, err := buildTest(t, scenario("/login")).Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatalf("setup should have gone through on its third try: %v", err)
	}
	if res.Setup == nil || res.Setup.Attempts != 3 || res.Setup.Status != 200 || logins.Load() != 3 {
		t.Fatalf("setup %+v after %d logins: want 3 attempts ending in 200", res.Setup, logins.Load())
	}
	if sum := res.Requests.Total(); sum.Total == 0 || sum.ByClass[outcome.ClassOK] != sum.Total {
		t.Fatalf("the requests should carry the token the third login gave: %v", sum.ByClass)
	}
	_, err = buildTest(t, scenario("/refused")).Run(context.Background(), RunOptions{})
	if err == nil || !errors.Is(err, ErrSetup) || refused.Load() != 1 {
		t.Fatalf("a 401 setup: error %v after %d tries, want one try and a setup error", err, refused.Load())
	}
}

// TestSegmentsMergeToWholeRun runs a test whole and in three segments; the
// merged segments hold exactly the whole run's counts.
func TestSegmentsMergeToWholeRun(t *testing.T) {
	t.Parallel()
	srv, _ := shopServer(t)
	test := buildTest(t, shopScenario(srv.URL, "    rate: 300\n    duration: 1s\n    lateAfter: 1s\n"))
	whole, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parts := runSegments(t, test, 3)
	if t.Failed() {
		return
	}
	merged, err := Merge(parts[2], parts[0], parts[1])
	if err != nil {
		t.Fatal(err)
	}
	counts := func(r *Result) string {
		s := fmt.Sprintf("planned %d total %d classes %v codes %v checks %d", r.Planned, r.Requests.Total().Total,
			r.Requests.Total().ByClass, r.Requests.StatusCodes(), r.Checks.Total().Total)
		for _, n := range []string{"profile", "pay"} {
			s += fmt.Sprintf(" %s %d", n, r.ByName[n].Total().Total)
		}
		return s
	}
	if got, want := counts(merged), counts(whole); got != want {
		t.Fatalf("merged segments:\n%s\nwhole run:\n%s", got, want)
	}
	if len(merged.Segments) != 3 || !AllPassed(merged.Evaluate()) {
		t.Fatalf("merged %v, verdict %+v", merged.Segments, merged.Evaluate())
	}
	if _, err := Merge(parts[0], parts[0]); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("merging a segment twice: %v", err)
	}
	if _, err := Merge(parts[0], whole); err == nil {
		t.Fatal("merging segments of different splits should fail")
	}
}

// runSegments runs the n segments of test at once and returns their
// results read back from the results file format, as relia load merge
// reads them; a failure is reported on t.
func runSegments(t *testing.T, test *Test, n int) []*Result {
	t.Helper()
	parts := make([]*Result, n)
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() {
			r, err := test.Run(context.Background(), RunOptions{Segment: Segment{Index: i, Count: n}})
			if err == nil {
				parts[i], err = throughFile(r)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return parts
}

// throughFile writes r as a results file and reads it back.
func throughFile(r *Result) (*Result, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	back := &Result{}
	return back, json.Unmarshal(data, back)
}

// stallServer answers at once, except for one second starting a second
// after its first request: a request that arrives then waits for the end
// of that second. stall returns when it began (zero before the first
// request).
func stallServer(t *testing.T) (srv *httptest.Server, stall func() time.Time) {
	t.Helper()
	var mu sync.Mutex
	var from time.Time
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		if from.IsZero() {
			from = time.Now().Add(time.Second)
		}
		stallFrom := from
		mu.Unlock()
		if now := time.Now(); now.After(stallFrom) && now.Before(stallFrom.Add(time.Second)) {
			time.Sleep(stallFrom.Add(time.Second).Sub(now))
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv, func() time.Time { mu.Lock(); defer mu.Unlock(); return from }
}

// TestCoordinatedOmission shows why the open model measures from the
// schedule: a one-second stall delays every request scheduled during it,
// so the open model's p99 shows the stall, while a closed model, whose
// VUs simply wait and send less, records at most one request a VU in it.
//
// What it counts holds on a starved host too: the open model's requests
// due in the stall are set by its schedule (rate x 1s), and each of them
// is measured from its due time, so a late generator only makes them
// slower; a closed VU sends at most one request in the stall (it waits
// for the answer, which comes at the stall's end), however fast or slow
// it runs outside it. A generator that hid the stall (one that waits
// like the closed model, or measures from its late send) fails the open
// model's counts.
func TestCoordinatedOmission(t *testing.T) {
	t.Parallel()
	const rate, vus = 200, 4
	type run struct {
		res   *Result
		stall time.Time
		// inStall counts the requests due (open) or sent (closed) in the
		// stall; slow those of them that took at least half a second.
		inStall, slow int
	}
	do := func(load string) run {
		srv, stall := stallServer(t)
		test := buildTest(t, `kind: Scenario
version: relia/v1
spec:
  baseURL: `+srv.URL+`
  requests: [{path: /}]
  load: {`+load+`, duration: 3s}
`)
		var mu sync.Mutex
		var outcomes []outcome.Outcome
		res, err := test.Run(context.Background(), RunOptions{Observe: func(o outcome.Outcome) {
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := run{res: res, stall: stall()}
		for _, o := range outcomes {
			if !o.Start.Before(r.stall) && o.Start.Before(r.stall.Add(time.Second)) {
				r.inStall++
				if o.Latency >= 500*time.Millisecond {
					r.slow++
				}
			}
		}
		return r
	}
	var open, closed run
	var wg sync.WaitGroup
	wg.Go(func() { open = do(fmt.Sprintf("rate: %d, maxInFlight: 400", rate)) })
	wg.Go(func() { closed = do(fmt.Sprintf("vus: %d", vus)) })
	wg.Wait()
	if open.stall.IsZero() || closed.stall.IsZero() {
		t.Fatal("a server saw no request")
	}
	t.Logf("in the stall: open %d due, %d slow; closed %d sent, %d slow, of %d", open.inStall, open.slow, closed.inStall, closed.slow, closed.res.Requests.Total().Total)
	// The open model: every request due in the stall's first half waited
	// at least half a second, counted from its due time.
	if open.inStall < rate*9/10 || open.slow < rate*4/10 {
		t.Errorf("open model: %d requests due in the stall, %d of them slow: want about %d and %d", open.inStall, open.slow, rate, rate/2)
	}
	if p99 := open.res.Requests.Total().Latency.Quantile(0.99); p99 < 500*time.Millisecond {
		t.Errorf("open model p99 %s: the stall should show (>= 500ms)", p99)
	}
	// The closed model: its VUs waited instead of sending, which is what
	// hides the stall: it holds one sample each at most where the open
	// model holds one per scheduled arrival, whatever its speed. (Its
	// latencies outside the stall are the host's business: a starved host
	// makes the in-process server slow too.)
	if closed.inStall > vus {
		t.Errorf("closed model sent %d requests in the stall, want at most one per VU (%d)", closed.inStall, vus)
	}
	var sb strings.Builder
	_ = open.res.WriteSummary(&sb, open.res.Judge())
	if !strings.Contains(sb.String(), "no coordinated omission") {
		t.Errorf("the summary should explain the two latencies:\n%s", sb.String())
	}
}

func TestRunFeedsTheLiveRecorder(t *testing.T) {
	t.Parallel()
	srv, _ := shopServer(t)
	test := buildTest(t, shopScenario(srv.URL, "    rate: 200\n    duration: 500ms\n    lateAfter: 1s\n"))
	live, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := test.Run(context.Background(), RunOptions{Live: live})
	if err != nil {
		t.Fatal(err)
	}
	got, want := live.Total(), res.Requests.Total()
	if want.Total != 100 || got.Total != want.Total || got.ByClass != want.ByClass {
		t.Fatalf("live recorder %d %v, result %d %v: want the same 100 outcomes", got.Total, got.ByClass, want.Total, want.ByClass)
	}
}

func TestExpectedStatusesAreSuccesses(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusPaymentRequired) // a declined card: the answer intended
	}))
	t.Cleanup(srv.Close)
	yaml := func(expected string) string {
		return `kind: Scenario
version: relia/v1
metadata: {name: pay}
spec:
  baseURL: ` + srv.URL + `
  requests:
    - {name: pay, method: POST, path: /pay` + expected + `}
  load: {rate: 100, duration: 200ms, lateAfter: 1s}
`
	}
	for _, c := range []struct {
		expected string
		class    outcome.Class
	}{{"", outcome.ClassStatus}, {", expectedStatuses: [201, 402]", outcome.ClassOK}, {", expectedStatuses: [201]", outcome.ClassStatus}} {
		res, err := buildTest(t, yaml(c.expected)).Run(context.Background(), RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if sum := res.Requests.Total(); sum.Total != 20 || sum.ByClass[c.class] != 20 {
			t.Errorf("expected%q: classes %v, want all 20 %v", c.expected, sum.ByClass, c.class)
		}
	}
	scs, err := ParseScenarios("bad.yaml", []byte(yaml(", expectedStatuses: [99]")))
	if err == nil {
		_, err = scs[0].Build()
	}
	if err == nil || !strings.Contains(err.Error(), "99 is not an HTTP status") {
		t.Errorf("status 99: %v", err)
	}
}
