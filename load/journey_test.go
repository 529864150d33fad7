package load

import (
	"context"
	"encoding/json"
	"fmt"

	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// journeyShop is a shop that remembers who is logged in by a cookie
// only: POST /login sets session=USER, /cart/USER answers only the
// cookie of USER (403 to another user's), and POST /checkout redirects
// (303) to the order, which counts the users who reach it.
type journeyShop struct {
	srv                 *httptest.Server
	orders, wrongCookie atomic.Int64
	mu                  sync.Mutex
	carts               map[string]int
}

func newJourneyShop(t testing.TB) *journeyShop {
	t.Helper()
	s := &journeyShop{carts: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/login" {
			var in struct{ User, Password string }
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Password != "pw-"+in.User {
				http.Error(w, "who?", http.StatusForbidden)
				return
			}
			http.SetCookie(w, &http.Cookie{Name: "session", Value: in.User, Path: "/", HttpOnly: true})
			_, _ = fmt.Fprintf(w, `{"user":%q}`, in.User)
			return
		}
		c, err := r.Cookie("session")
		if err != nil {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		user := c.Value
		switch {
		case strings.HasPrefix(r.URL.Path, "/cart/"):
			if strings.TrimPrefix(r.URL.Path, "/cart/") != user {
				s.wrongCookie.Add(1)
				http.Error(w, "not your cart", http.StatusForbidden)
				return
			}
			s.mu.Lock()
			if r.Method == http.MethodPost {
				s.carts[user]++
			}
			n := s.carts[user]
			s.mu.Unlock()
			_, _ = fmt.Fprintf(w, `{"items":%d}`, n)
		case r.URL.Path == "/checkout" && r.Method == http.MethodPost:
			http.Redirect(w, r, "/orders/"+user, http.StatusSeeOther)
		case strings.HasPrefix(r.URL.Path, "/orders/") && r.Method == http.MethodGet:
			s.orders.Add(1)
			_, _ = fmt.Fprintf(w, `{"order":"o-%s","state":"paid"}`, user)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// journeyScenario is a checkout journey: each user logs in as its own
// row of users.csv, adds to its cart twice and views it (the group
// cart), and checks out, following the redirect to the order.
func journeyScenario(t testing.TB, base, load, extra string) *Test {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "users.csv"), []byte("user,password\nann,pw-ann\nbob,pw-bob\ncid,pw-cid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := `kind: Scenario
version: relia/v1
metadata: {name: shop}
spec:
  baseURL: ` + base + `
  data: {file: users.csv}
  journeys:
    - name: checkout
      setup:
        - request:
            name: login
            method: POST
            path: /login
            body: '{"user":"{{data.user}}","password":"{{data.password}}"}'
            checks: [{status: [200]}]
      steps:
        - group: cart
          steps:
            - loop: 2
              steps:
                - request: {name: add, method: POST, path: '/cart/{{data.user}}', checks: [{status: [200]}]}
            - request:
                name: view-cart
                path: '/cart/{{data.user}}'
                extract: {items: $.items}
                checks: [{status: [200]}]
        - if: {var: items, notEquals: "0"}
          request:
            name: checkout
            method: POST
            path: /checkout
            checks: [{status: [200]}, {jsonPath: $.state, equals: paid}]
        - think: 25ms
` + extra + `
  load: ` + load + `
  thresholds:
    journey_success: ["rate>0.99"]
    "journey_duration{journey:checkout}": ["p(95)<10000"]
    "http_reqs{group:::cart}": ["count>0"]
`
	return loadScenarioFile(t, dir, sc)
}

// loadScenarioFile writes a scenario into dir and loads it, so that its
// data file is found beside it.
func loadScenarioFile(t testing.TB, dir, sc string) *Test {
	t.Helper()
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(sc), 0o644); err != nil {
		t.Fatal(err)
	}
	test, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return test
}

// TestJourneyOpenModel walks 20 users through login, cart and checkout
// at 20 a second: every user keeps its own cookie (no cart is answered
// with another user's), every checkout's redirect is followed to the
// order, and the journey metrics and thresholds count whole journeys.
func TestJourneyOpenModel(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	test := journeyScenario(t, shop.srv.URL, "{rate: 20, duration: 1s}", "")
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shop.wrongCookie.Load() != 0 {
		t.Errorf("%d cart requests carried another user's cookie", shop.wrongCookie.Load())
	}
	if got := shop.orders.Load(); got != 20 {
		t.Errorf("the order page was reached %d times, want 20 (one per user, after the checkout's redirect)", got)
	}
	all := res.Journeys.All.Total()
	if all.Total != 20 || all.ByClass[0] != 20 {
		t.Errorf("journeys %d, ok %d: want 20 and 20 (%v)", all.Total, all.ByClass[0], all.ByClass)
	}
	// login, 2 adds, the view, checkout and its redirect: 6 requests a user.
	if got := res.Requests.Total().Sent(); got != 6*20 {
		t.Errorf("%d requests sent, want %d", got, 6*20)
	}
	if got := res.ByName["checkout"].StatusCodes(); got[303] != 20 || got[200] != 20 {
		t.Errorf("checkout statuses %v: want 20 redirects and 20 orders", got)
	}
	if res.Journeys.ByGroup["::cart"].Total().Total != 20 {
		t.Errorf("group ::cart ran %d times, want 20", res.Journeys.ByGroup["::cart"].Total().Total)
	}
	for _, tr := range res.Evaluate() {
		if !tr.Passed || tr.NoData {
			t.Errorf("threshold %s: %s, passed %v", tr, tr.ValueText(), tr.Passed)
		}
		if tr.Ref == "http_reqs{group:::cart}" && tr.Value != 3*20 {
			t.Errorf("http_reqs{group:::cart} = %v, want 60 (3 requests in the group per user)", tr.Value)
		}
	}
	// The journey's length runs from the scheduled arrival: at least the
	// sum of its requests' service times.
	if j := res.Journeys.All.Total().Latency; j.Min() <= 0 {
		t.Errorf("journey durations %v", j.Min())
	}
}

// TestJourneyThresholdFails shows a threshold on a journey metric is
// judged on the journeys: a checkout whose redirect is not followed ends
// on the 303, its check for 200 fails, and journey_success falls to 0.
func TestJourneyThresholdFails(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	test := journeyScenario(t, shop.srv.URL, "{rate: 10, duration: 1s}", "      redirects: {follow: false}\n")
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shop.orders.Load() != 0 {
		t.Errorf("redirects off, yet the order page was reached %d times", shop.orders.Load())
	}
	var success *ThresholdResult
	results := res.Evaluate()
	for i := range results {
		if results[i].Ref == "journey_success" {
			success = &results[i]
		}
	}
	if success == nil || success.Passed || success.Value != 0 {
		t.Fatalf("journey_success: %+v, want a failed threshold at 0", success)
	}
	if j := res.Judge(); j.Result != "failed" {
		t.Errorf("judged %q, want failed", j.Result)
	}
}

// TestJourneyClosedModelKeepsCookiesPerVU runs three VUs, each logged in
// once as its own user, walking the journey again and again: their
// carts grow, and no VU ever sends another's cookie.
func TestJourneyClosedModelKeepsCookiesPerVU(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	test := journeyScenario(t, shop.srv.URL, "{vus: 3, duration: 1s}", "")
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if shop.wrongCookie.Load() != 0 {
		t.Errorf("%d cart requests carried another user's cookie", shop.wrongCookie.Load())
	}
	logins := res.ByName["login"].Total().Total
	if logins != 3 {
		t.Errorf("%d logins, want 3: each VU logs in once", logins)
	}
	n := res.Journeys.All.Total().Total
	if n < 3 || res.Iterations != uint64(n) {
		t.Errorf("%d journeys, %d iterations: want the same, at least 3", n, res.Iterations)
	}
	shop.mu.Lock()
	defer shop.mu.Unlock()
	if len(shop.carts) != 3 {
		t.Errorf("carts %v: want one per user", shop.carts)
	}
}

// TestJourneySegmentsMerge splits the open-model journey test in two and
// merges the halves: the journeys and groups add up to the whole.
func TestJourneySegmentsMerge(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	test := journeyScenario(t, shop.srv.URL, "{rate: 10, duration: 1s}", "")
	m, err := Merge(runSegments(t, test, 2)...)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Journeys.All.Total().Total; got != 10 {
		t.Errorf("merged journeys %d, want 10", got)
	}
	if got := m.Journeys.ByGroup["::cart"].Total().Total; got != 10 {
		t.Errorf("merged group runs %d, want 10", got)
	}
	rows := m.JourneyRows()
	if len(rows) != 2 || rows[0].Name != "checkout" || rows[0].Count != 10 || rows[0].SuccessRate() != 1 {
		t.Errorf("rows %+v", rows)
	}
}

func TestJourneyBuildErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{"  journeys: [{name: j, steps: [{think: 1s}]}]\n  requests: [{path: /}]\n", "not both"},
		{"  journeys: [{name: j, steps: [{}]}]\n", "needs a request"},
		{"  journeys: [{name: j, steps: [{group: a, steps: [{think: 1s}]}]}]\n  thresholds: {\"group_duration{group:::b}\": [\"p(95)<1\"]}\n", `no group "::b"`},
		{"  journeys: [{name: j, steps: [{think: 1s}]}]\n  thresholds: {\"journey_success{journey:k}\": [\"rate>0.9\"]}\n", `no journey is named "k"`},
		{"  requests: [{path: /}]\n  thresholds: {journey_success: [\"rate>0.9\"]}\n", "has none"},
		{"  journeys: [{name: j, steps: [{if: {var: nope, equals: x}, think: 1s}]}]\n", `no variable "nope"`},
		{"  requests: [{path: /}]\n  cookieJar: {maxCookies: 10}\n", "spec.cookieJar: bounds the cookies of journey users"},
		{"  journeys: [{name: j, steps: [{think: 1s}]}]\n  cookieJar: {maxCookies: -1}\n", "spec.cookieJar.maxCookies: -1 is negative"},
		{"  journeys: [{name: j, steps: [{think: 1s}]}]\n  cookieJar: {maxSize: 4GiB}\n", "spec.cookieJar.maxSize"},
	} {
		sc := "kind: Scenario\nversion: relia/v1\nspec:\n  baseURL: http://127.0.0.1:1\n  load: {rate: 1, duration: 1s}\n" + tc.body
		scs, err := ParseScenarios("j.yaml", []byte(sc))
		if err == nil {
			_, err = scs[0].Build()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}

// TestJourneyRunsFromItsScheduledArrival hands a worker an arrival that
// was due a second ago, as a generator that fell behind would: the
// journey's length and its first request's latency run from the due
// time, so they include that second, while the request's service time
// does not. A journey measured from its actual start would hide it.
func TestJourneyRunsFromItsScheduledArrival(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	test := journeyScenario(t, shop.srv.URL, "{rate: 1, duration: 1s}", "")
	tr, err := newTransport(test.Client)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	r := &runner{t: test, clk: clock.Real(), seg: Whole, vars: test.vars, pool: statePool(tr)}
	if r.res, err = newResult(test, Whole); err != nil {
		t.Fatal(err)
	}
	r.recorders()
	// The recorders' histograms keep three significant digits: a second
	// may read back as 999.9 ms.
	const late = 990 * time.Millisecond
	due := time.Now().Add(-time.Second)
	r.openJourneyWorker(0)(context.Background(), Arrival{N: 0, Due: due})
	j := r.res.Journeys.All.Total()
	if j.Total != 1 || j.Latency.Min() < late {
		t.Errorf("journey: %d recorded, length %s: want one, at least the second it was late", j.Total, j.Latency.Min())
	}
	login := r.res.ByName["login"].Total()
	if login.Latency.Min() < late || login.ServiceTime.Max() >= time.Second {
		t.Errorf("login latency %s, service time %s: want the latency from the due time, the service time from the send", login.Latency.Min(), login.ServiceTime.Max())
	}
	if lag := r.res.Lag.Total().Latency; lag.Count() != 1 || lag.Min() < late {
		t.Errorf("schedule lag %d samples, %s: want the one arrival, a second late", lag.Count(), lag.Min())
	}
	// Later requests of the journey run from their own send.
	if add := r.res.ByName["add"].Total(); add.Total != 2 || add.Latency.Max() >= time.Second {
		t.Errorf("add: %d requests, latency up to %s: want 2, measured from their send", add.Total, add.Latency.Max())
	}
}

// TestJourneyOverH2CFollowsItsOwnRedirects runs the journey over HTTP/2
// (h2c), whose client would follow redirects on its own: the journey
// follows them itself, each hop recorded, with the user's cookies.
func TestJourneyOverH2CFollowsItsOwnRedirects(t *testing.T) {
	t.Parallel()
	shop := newJourneyShop(t)
	shop.srv.Close()
	h2 := httptest.NewUnstartedServer(shop.srv.Config.Handler)
	h2.Config.Protocols = new(http.Protocols)
	h2.Config.Protocols.SetUnencryptedHTTP2(true)
	h2.Start()
	t.Cleanup(h2.Close)
	test := journeyScenario(t, h2.URL, "{rate: 10, duration: 1s}", "")
	test.Client.Version = H2C
	res, err := test.Run(context.Background(), RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.ByName["checkout"].StatusCodes(); got[303] != 10 || got[200] != 10 {
		t.Errorf("checkout statuses %v: want 10 redirects recorded and 10 orders", got)
	}
	if shop.wrongCookie.Load() != 0 || shop.orders.Load() != 10 {
		t.Errorf("%d wrong cookies, %d orders: want 0 and 10", shop.wrongCookie.Load(), shop.orders.Load())
	}
}
