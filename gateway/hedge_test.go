package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// hedgeBackends are two targets of which the first to be called hangs
// until its request is cancelled (or release is closed) and every later
// call is answered at once: whichever target the balancer picks first,
// only a hedge can answer in time.
type hedgeBackends struct {
	a, b      *backend
	mu        sync.Mutex
	calls     int
	arrived   chan struct{} // closed when the first call arrives
	cancelled chan struct{} // closed when the first call's request is cancelled
	release   chan struct{}
}

func newHedgeBackends(t *testing.T) *hedgeBackends {
	h := &hedgeBackends{arrived: make(chan struct{}), cancelled: make(chan struct{}), release: make(chan struct{})}
	h.a, h.b = newBackend(t, "a"), newBackend(t, "b")
	t.Cleanup(func() {
		select {
		case <-h.release:
		default:
			close(h.release)
		}
	})
	fn := func(w http.ResponseWriter, r *http.Request) bool {
		h.mu.Lock()
		h.calls++
		n := h.calls
		h.mu.Unlock()
		if n > 1 {
			return false
		}
		close(h.arrived)
		select {
		case <-r.Context().Done():
			close(h.cancelled)
		case <-h.release:
			fmt.Fprint(w, "slow")
		}
		return true
	}
	h.a.handle(fn)
	h.b.handle(fn)
	return h
}

func (h *hedgeBackends) callCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls
}

func hedgeSpec(h *hedgeBackends) string {
	return fmt.Sprintf(`  upstreams: [{name: svc, targets: [{address: %q}, {address: %q}]}]
  routes:
    - name: r
      upstream: svc
      hedge: {delay: 50ms}
      retry: {attempts: 2}
`, h.a.addr(), h.b.addr())
}

// TestHedgeWinsAndCancelsTheLoser: the hedge answers, the first attempt
// is cancelled, and the call's record tells both: the hedge that answered
// and the attempt cancelled when it did.
func TestHedgeWinsAndCancelsTheLoser(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	h := newHedgeBackends(t)
	calls := make(keptCalls, 1)
	g, url := startGateway(t, hedgeSpec(h), Options{Clock: clk, Calls: calls})

	type answer struct {
		code int
		body string
	}
	done := make(chan answer, 1)
	go func() {
		code, body, _ := get(t, "GET", url+"/x", nil)
		done <- answer{code, body}
	}()
	<-h.arrived
	clk.BlockUntil(1) // the hedge timer
	clk.Advance(50 * time.Millisecond)
	a := <-done
	if a.code != 200 || (a.body != "a" && a.body != "b") {
		t.Fatalf("hedged request: %d %q, want 200 from the hedge", a.code, a.body)
	}
	if h.a.count() != 1 || h.b.count() != 1 {
		t.Errorf("calls: a %d, b %d; want one each (the first attempt and its hedge on the other target)", h.a.count(), h.b.count())
	}
	select {
	case <-h.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the losing attempt was not cancelled")
	}
	if _, retries := g.state.Load().routes[0].retry.budget.Counts(); retries != 1 {
		t.Errorf("retry budget spent %d, want 1 for the hedge", retries)
	}
	if _, m, _ := get(t, "GET", "http://"+g.AdminAddr()+"/metrics", nil); !strings.Contains(m, `relia_hedge_attempts_total{name="r"} 1`) {
		t.Error("the metrics do not count the hedge")
	}
	r := calls.next(t, "/x")
	var story []string
	for _, s := range r.Steps {
		story = append(story, fmt.Sprintf("%s %d %s (%s) %s", s.Kind, s.Status, s.Outcome, s.Reason, s.Latency))
	}
	want := []string{"hedge 200 ok () 0s", "attempt 0 canceled (another attempt answered first) 50ms"}
	if strings.Join(story, "; ") != strings.Join(want, "; ") || r.Steps[0].Target == r.Steps[1].Target {
		t.Errorf("the story: %v, want %v on two targets", story, want)
	}
}

func TestHedgeLeavesNonIdempotentRequestsAlone(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	h := newHedgeBackends(t)
	g, url := startGateway(t, hedgeSpec(h), Options{Clock: clk})
	done := make(chan int, 1)
	go func() {
		code, _, _ := get(t, "POST", url+"/x", nil)
		done <- code
	}()
	<-h.arrived
	clk.Advance(time.Second) // far past the hedge delay: nothing may follow
	close(h.release)
	if code := <-done; code != 200 {
		t.Fatalf("POST: %d", code)
	}
	if n := h.callCount(); n != 1 {
		t.Errorf("a POST reached the upstream %d times, want 1", n)
	}
	if _, retries := g.state.Load().routes[0].retry.budget.Counts(); retries != 0 {
		t.Errorf("retry budget spent %d on a POST", retries)
	}
}

func TestHedgeConfigIsChecked(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{"  routes: [{name: r, upstream: users, hedge: {}}]\n", "delay"},
		{"  routes: [{name: r, upstream: users, hedge: {delay: 10ms, maxHedges: 9}}]\n", "spec.routes[0].hedge.maxHedges"},
	} {
		if _, err := Parse("test.yaml", []byte(validHead+tc.body)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error naming %s", tc.body, err, tc.want)
		}
	}
}
