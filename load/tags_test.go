package load

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// taggedServer answers GET /ok with 200 and POST /bad with 503.
func taggedServer(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

func taggedScenario(base string) string {
	return `kind: Scenario
version: relia/v1
metadata: {name: tagged}
spec:
  baseURL: ` + base + `
  requests:
    - {name: ok, path: /ok, weight: 3, checks: [{status: [200]}]}
    - {name: bad, method: POST, path: /bad, body: x, checks: [{status: [200]}]}
  load: {rate: 200, duration: 1s, lateAfter: 1s}
  thresholds:
    "http_reqs{method:POST}": ["count>0"]
    "http_reqs{status:503}": ["count>0"]
    "http_reqs{expected_response:false}": ["count>0"]
    "http_req_failed{expected_response:true}": ["rate<0.01"]
    "http_req_failed{method:GET,scenario:tagged}": ["rate<0.01"]
    "checks{method:GET}": ["rate>0.99"]
    "http_req_waiting{name:ok}": ["p(95)<5000"]
    "http_req_receiving{status:200}": ["max<5000"]
    http_req_waiting: ["p(99)<5000"]
    iterations: ["count>0"]
    vus_max: ["value>0"]
`
}

// TestTagThresholds judges thresholds on k6's tags: each tag set's value
// is the count of the requests the tags select, and the values stay the
// same through the results file and a merge of segments.
func TestTagThresholds(t *testing.T) {
	t.Parallel()
	srv := taggedServer(t)
	test := buildTest(t, taggedScenario(srv.URL))
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok, bad := res.ByName["ok"].Total().Total, res.ByName["bad"].Total().Total
	if ok+bad != 200 || ok == 0 || bad == 0 {
		t.Fatalf("ok %d, bad %d of 200", ok, bad)
	}
	want := map[string]float64{
		"http_reqs{method:POST}":                      float64(bad),
		"http_reqs{status:503}":                       float64(bad),
		"http_reqs{expected_response:false}":          float64(bad),
		"http_req_failed{expected_response:true}":     0,
		"http_req_failed{method:GET,scenario:tagged}": 0,
		"checks{method:GET}":                          1,
		"iterations":                                  200,
		"vus_max":                                     float64(max(test.MaxInFlight, 1)),
	}
	verdict := res.Evaluate()
	for _, v := range verdict {
		if w, ok := want[v.Ref]; ok && (v.Value != w || v.NoData) {
			t.Errorf("%s = %v (no data %v), want %v", v.Ref, v.Value, v.NoData, w)
		}
		if !v.Passed {
			t.Errorf("%s failed: %+v", v.Ref, v)
		}
	}
	if len(verdict) != 11 {
		t.Fatalf("%d thresholds judged, want 11", len(verdict))
	}
	// The phases of the ok requests are theirs alone: as many as there
	// are ok requests.
	if n := res.ByTags["name:ok"].Phases.Response.Total().Total; n != ok {
		t.Fatalf("phases of {name:ok}: %d, want %d", n, ok)
	}
	if n := res.Phases.Response.Total().Total; n != 200 {
		t.Fatalf("phases of the run: %d, want 200", n)
	}
	sum := res.SummaryMetrics(verdict)
	if w := sum["http_req_waiting"]; w.Values["count"] != 200 || w.Thresholds["p(99)<5000"].Value != w.Values["p(99)"] {
		t.Fatalf("summary http_req_waiting %+v", w)
	}
	if it := sum["iterations"]; it.Values["count"] != 200 {
		t.Fatalf("summary iterations %+v", it)
	}

	// Through the results file, and segments merged: the same values.
	values := func(r *Result) map[string]float64 {
		out := map[string]float64{}
		for _, v := range r.Evaluate() {
			out[v.Ref] = v.Value
		}
		return out
	}
	back, err := throughFile(res)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := values(back), values(res); !mapsEqual(got, want) {
		t.Fatalf("after the results file:\n%v\nwant\n%v", got, want)
	}
	parts := runSegments(t, test, 2)
	if t.Failed() {
		return
	}
	merged, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	mv := values(merged)
	for _, ref := range []string{"http_reqs{method:POST}", "http_reqs{status:503}", "http_reqs{expected_response:false}"} {
		if mv[ref] != float64(merged.ByName["bad"].Total().Total) {
			t.Errorf("merged %s = %v, want %d", ref, mv[ref], merged.ByName["bad"].Total().Total)
		}
	}
	if mv["iterations"] != 200 || merged.Phases.Response.Total().Total != 200 {
		t.Errorf("merged iterations %v, phases %d, want 200", mv["iterations"], merged.Phases.Response.Total().Total)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestTagThresholdErrors: tags relia cannot split by are refused with the
// set it can.
func TestTagThresholdErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ ref, want string }{
		{"http_reqs{group:::login}", "no groups"},
		{"http_reqs{method:PUT}", "methods: GET, POST"},
		{"http_reqs{status:abc}", "from 100 to 599"},
		{"http_reqs{expected_response:yes}", "true or false"},
		{"http_reqs{scenario:other}", `named "tagged"`},
		{"http_reqs{url:/x}", "name, method, status, expected_response, scenario"},
		{"iterations{name:ok}", "whole run"},
	} {
		yaml := strings.Replace(taggedScenario("http://127.0.0.1:1"), `    iterations: ["count>0"]`, `    "`+c.ref+`": ["count>0"]`, 1)
		scs, err := ParseScenarios("test.yaml", []byte(yaml))
		if err == nil {
			_, err = scs[0].Build()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an error with %q, got %v", c.ref, c.want, err)
		}
	}
}

// phaseServer answers after a wait, then sends the body in two parts with
// a wait between them: every request waits at least wait for its first
// byte and receives for at least wait.
func phaseServer(wait time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(wait)
		w.Header().Set("Content-Length", "4")
		_, _ = io.WriteString(w, "ab")
		w.(http.Flusher).Flush()
		time.Sleep(wait)
		_, _ = io.WriteString(w, "cd")
	})
}

// TestPhasesBothClients measures the phases with relia's HTTP/1.1 client
// and with net/http's (HTTP/2). Per request, the phases add up to the
// request's time, which holds the server's two waits; the first request
// connects and shakes hands, the second reuses the connection. In a run,
// every request's phases are recorded.
func TestPhasesBothClients(t *testing.T) {
	t.Parallel()
	const wait = 20 * time.Millisecond
	for _, v := range []HTTPVersion{HTTP1, HTTP2} {
		t.Run(string(v), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewUnstartedServer(phaseServer(wait))
			srv.EnableHTTP2 = true
			srv.StartTLS()
			defer srv.Close()
			tr, err := newTransport(ClientOptions{Timeout: 5 * time.Second, Version: v, Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.close()
			sess := tr.session()
			for i := range 2 {
				var rep wireReply
				// By name, so that the first request looks it up.
				u := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/x"
				if err := sess.do(&wireRequest{method: "GET", url: []byte(u)}, false, &rep); err != nil || rep.status != 200 {
					t.Fatalf("request %d: status %d, %v", i, rep.status, err)
				}
				ph := rep.phases
				total := ph.Blocked + ph.Connecting + ph.TLSHandshaking + ph.Sending + ph.Waiting + ph.Receiving
				if total < 2*wait || ph.Waiting <= 0 || ph.Sending < 0 || ph.Receiving < 0 || ph.Blocked < 0 {
					t.Fatalf("request %d: phases %+v add up to %s, want at least %s", i, ph, total, 2*wait)
				}
				if fresh := ph.Connecting > 0 && ph.TLSHandshaking > 0; fresh != (i == 0) {
					t.Fatalf("request %d: connecting %s, tls %s; want both > 0 on the first request only", i, ph.Connecting, ph.TLSHandshaking)
				}
			}

			yaml := `kind: Scenario
version: relia/v1
spec:
  baseURL: ` + srv.URL + `
  http: "` + string(v) + `"
  tls: {insecure: true}
  requests: [{path: /x}]
  load: {vus: 1, duration: 200ms}
`
			res, err := buildTest(t, yaml).Run(context.Background(), RunOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sum := res.Requests.Total()
			from, to := res.span()
			for _, m := range PhaseMetrics {
				if n := res.Phases.histogram(m, from, to).Count(); n != sum.Total || n == 0 {
					t.Errorf("%s: %d samples of %d requests", m, n, sum.Total)
				}
			}
			if c := res.Phases.histogram("http_req_connecting", from, to); c.CountAtOrBelow(0) != sum.Total-1 {
				t.Errorf("one VU connects once: %d of %d requests did not connect", c.CountAtOrBelow(0), sum.Total)
			}
		})
	}
}

var traceparentRE = regexp.MustCompile(`^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`)

// TestTraceparent: with every request sampled each carries a valid,
// fresh traceparent and the failed ones' trace ids are kept; without
// sampling none does; a request that sets its own keeps it.
func TestTraceparent(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string][]string{} // by path
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Get("traceparent"))
		mu.Unlock()
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	const own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	yaml := `kind: Scenario
version: relia/v1
spec:
  baseURL: ` + srv.URL + `
  requests:
    - {name: ok, path: /ok, weight: 3}
    - {name: fail, path: /fail}
    - {name: own, path: /own, headers: {traceparent: "` + own + `"}}
  load: {rate: 100, duration: 1s, lateAfter: 1s}
`
	for _, sample := range []float64{1, 0} {
		mu.Lock()
		clear(seen)
		mu.Unlock()
		test := buildTest(t, yaml)
		test.TraceSample = sample
		res, err := test.Run(context.Background(), RunOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		ids := map[string]bool{}
		for _, path := range []string{"/ok", "/fail"} {
			for _, tp := range seen[path] {
				switch {
				case sample == 0 && tp != "":
					t.Fatalf("unsampled run sent traceparent %q", tp)
				case sample == 1 && !traceparentRE.MatchString(tp):
					t.Fatalf("traceparent %q is not a sampled version 00 one", tp)
				case sample == 1 && ids[tp[3:35]]:
					t.Fatalf("trace id %s sent twice", tp[3:35])
				}
				if tp != "" {
					ids[tp[3:35]] = true
				}
			}
		}
		for _, tp := range seen["/own"] {
			if tp != own {
				t.Fatalf("a request's own traceparent was replaced by %q", tp)
			}
		}
		nOK, nFail := len(seen["/ok"]), len(seen["/fail"])
		mu.Unlock()
		tr := res.Traces
		if sample == 0 {
			if tr.Sampled != 0 || len(tr.FailedSamples) != 0 {
				t.Fatalf("unsampled run: %+v", tr)
			}
			continue
		}
		if tr.Sampled != int64(nOK+nFail) || tr.Failed != int64(nFail) || nFail == 0 {
			t.Fatalf("traces %d sampled, %d failed; server saw %d ok, %d failing", tr.Sampled, tr.Failed, nOK, nFail)
		}
		if len(tr.FailedSamples) != min(nFail, MaxFailedTraces) {
			t.Fatalf("%d failed samples kept of %d", len(tr.FailedSamples), nFail)
		}
		for _, f := range tr.FailedSamples {
			if !ids[f.TraceID] || f.Status != 500 || f.Name != "fail" {
				t.Fatalf("failed sample %+v is not a request the server saw fail", f)
			}
		}
		var sb strings.Builder
		if err := res.WriteSummary(&sb, res.Judge()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(sb.String(), "traces: ") || !strings.Contains(sb.String(), tr.FailedSamples[0].TraceID) {
			t.Fatalf("summary does not show the traces:\n%s", sb.String())
		}
		back, err := throughFile(res)
		if err != nil {
			t.Fatal(err)
		}
		if back.Traces.Sampled != tr.Sampled || len(back.Traces.FailedSamples) != len(tr.FailedSamples) {
			t.Fatalf("traces after the results file: %+v", back.Traces)
		}
	}
}

// FuzzResultFile reads results files as relia load merge and relia report
// do: a file is refused with an error, or it is judged, summarized, turned
// into every output and written again without panicking.
func FuzzResultFile(f *testing.F) {
	srv := taggedServer(f)
	test := buildTest(f, strings.Replace(taggedScenario(srv.URL), "rate: 200, duration: 1s", "rate: 20, duration: 200ms", 1))
	test.TraceSample = 1
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		f.Fatal(err)
	}
	data, err := res.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	jres, err := journeyScenario(f, newJourneyShop(f).srv.URL, "{rate: 10, duration: 200ms}", "").Run(context.Background(), RunOptions{})
	if err != nil {
		f.Fatal(err)
	}
	if data, err = jres.MarshalJSON(); err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"schema":"relia/load/v1","model":"open","segments":["0/1"],"requests":{},"lag":{},"checks":{},"by_tags":{"x":null}}`))
	f.Add([]byte(`{"schema":"relia/load/v1","model":"open","segments":["0/1"],"requests":{},"lag":{},"checks":{},"journeys":{"all":{},"groups":{},"by_group":{"::a":null}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Result
		if err := r.UnmarshalJSON(data); err != nil {
			return
		}
		j := r.Judge()
		_ = r.SummaryMetrics(j.Thresholds)
		_ = r.WriteSummary(io.Discard, j)
		_ = r.RemoteWriteSeries()
		_ = r.OTLPMetrics()
		if _, err := r.MarshalJSON(); err != nil {
			t.Fatalf("a result read cannot be written: %v", err)
		}
	})
}
