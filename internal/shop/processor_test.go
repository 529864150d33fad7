package shop

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/fault"
)

// charges sends n charges with fresh keys straight to the processor and
// counts the statuses.
func charges(t *testing.T, c *http.Client, s *Shop, prefix string, n int) map[int]int {
	t.Helper()
	counts := map[int]int{}
	for i := range n {
		a := mustCall(t, c, "POST", s.Processor().URL()+"/charges", `{"amountCents": 300, "currency": "EUR", "userId": 1}`,
			"Idempotency-Key", fmt.Sprint(prefix, i))
		counts[a.status]++
	}
	return counts
}

// within reports whether k of n is within 5 standard deviations of a
// binomial share p: a seeded test never flakes, and a broken rate still
// fails it.
func within(k, n int, p float64) bool {
	sd := math.Sqrt(float64(n) * p * (1 - p))
	return math.Abs(float64(k)-float64(n)*p) <= 5*sd+1
}

func TestProcessorErrorRates(t *testing.T) {
	t.Parallel()
	const n = 400
	cases := []struct {
		name   string
		o      Options
		faults ProcessorFaults
		status int
		rate   float64
	}{
		{"no errors", Options{NoProcessorErrors: true}, ProcessorFaults{}, 500, 0},
		{"base errors", Options{ProcessorErrorRate: 0.05}, ProcessorFaults{}, 500, 0.05},
		{"injected 503s", Options{NoProcessorErrors: true}, ProcessorFaults{ErrorRate: 0.3}, 503, 0.3},
		{"injected 500s", Options{NoProcessorErrors: true}, ProcessorFaults{ErrorRate: 0.1, ErrorStatus: 500}, 500, 0.1},
		{"every charge fails", Options{NoProcessorErrors: true}, ProcessorFaults{ErrorRate: 1}, 503, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.o.Seed = 21
			s := startShop(t, tc.o)
			if err := s.Processor().SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			counts := charges(t, testClient(t), s, "k", n)
			if !within(counts[tc.status], n, tc.rate) {
				t.Errorf("%d of %d answered %d, want about %.0f%% (all: %v)", counts[tc.status], n, tc.status, 100*tc.rate, counts)
			}
			if tc.faults.ErrorRate > 0 && s.Processor().Faulted()[FaultErrors] != int64(counts[tc.status]) {
				t.Errorf("Faulted %v, counted %d", s.Processor().Faulted(), counts[tc.status])
			}
		})
	}
}

func TestProcessorFaultsAreSeeded(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) string {
		s := startShop(t, Options{Seed: seed, NoProcessorErrors: true})
		if err := s.Processor().SetFaults(ProcessorFaults{ErrorRate: 0.5}); err != nil {
			t.Fatal(err)
		}
		c := testClient(t)
		var b strings.Builder
		for i := range 64 {
			a := mustCall(t, c, "POST", s.Processor().URL()+"/charges", `{"amountCents": 1, "currency": "EUR", "userId": 1}`, "Idempotency-Key", fmt.Sprint(i))
			fmt.Fprint(&b, a.status/100)
		}
		return b.String()
	}
	a, b, other := run(5), run(5), run(6)
	if a != b {
		t.Errorf("same seed, other decisions:\n%s\n%s", a, b)
	}
	if a == other {
		t.Errorf("seeds 5 and 6 decided alike: %s", a)
	}
}

func TestProcessorLatencyAndHang(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	s := startShop(t, Options{Clock: fc, NoProcessorErrors: true})
	c := testClient(t)
	send := func(ctx context.Context) <-chan result {
		return callAsync(ctx, c, "POST", s.Processor().URL()+"/charges", `{"amountCents": 1, "currency": "EUR", "userId": 1}`, "Idempotency-Key", "x")
	}

	if err := s.Processor().SetFaults(ProcessorFaults{Latency: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	done := send(context.Background())
	fc.BlockUntil(1) // held by the latency fault
	if d, _ := fc.NextDeadline(); d.Sub(fc.Now()) != 300*time.Millisecond {
		t.Errorf("held for %s, want 300ms", d.Sub(fc.Now()))
	}
	fc.Advance(300 * time.Millisecond)
	if r := <-done; r.err != nil || r.a.status != 201 {
		t.Errorf("after the added latency: %v %d", r.err, r.a.status)
	}

	if err := s.Processor().SetFaults(ProcessorFaults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	if !s.Processor().Faults().Hang {
		t.Error("Faults does not report the hang")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done = send(ctx)
	fc.BlockUntil(1)
	fc.Advance(time.Hour)
	if fc.Waiters() != 1 {
		t.Fatal("a hanging charge returned within an hour")
	}
	cancel()
	if r := <-done; r.err == nil {
		t.Errorf("a hanging charge answered %d", r.a.status)
	}
	if got := s.Processor().Faulted(); got[FaultHang] != 1 {
		t.Errorf("Faulted %v, want one hang", got)
	}

	// Raw rules of the fault filter work too; setting them clears the
	// typed faults.
	err := s.Processor().SetRules([]fault.HTTPRule{{Name: "teapot", Probability: 1, Fault: fault.HTTPFault{Path: "/charges", AbortStatus: 418}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := <-send(context.Background()); r.err != nil || r.a.status != 418 {
		t.Errorf("with a raw rule: %v %d", r.err, r.a.status)
	}
	if s.Processor().Faults() != (ProcessorFaults{}) {
		t.Errorf("typed faults after SetRules: %+v", s.Processor().Faults())
	}
	// Health checks are never faulted.
	if a := mustCall(t, c, "GET", s.Processor().URL()+"/healthz", ""); a.status != 200 {
		t.Errorf("health under a fault: %d", a.status)
	}
}

func TestProcessorFaultsInvalid(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{})
	cases := []struct {
		name string
		f    ProcessorFaults
		want string
	}{
		{"negative latency", ProcessorFaults{Latency: -time.Second}, "latency -1s is negative"},
		{"error rate above 1", ProcessorFaults{ErrorRate: 1.1}, "error rate 1.1"},
		{"NaN error rate", ProcessorFaults{ErrorRate: math.NaN()}, "error rate NaN"},
		{"error status not 5xx", ProcessorFaults{ErrorRate: 0.5, ErrorStatus: 404}, "error status 404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := s.Processor().SetFaults(tc.f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	if err := s.Processor().SetRules([]fault.HTTPRule{{Name: "", Probability: 1}}); err == nil {
		t.Error("a nameless rule was taken")
	}
}

func TestPaymentsReachProcessorVia(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{NoProcessorErrors: true})
	target, err := url.Parse(s.Processor().URL())
	if err != nil {
		t.Fatal(err)
	}
	var relayed atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		relayed.Add(1)
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	pay := payer(t, testClient(t), s, 4)

	if err := s.Processor().Via(proxy.URL); err != nil {
		t.Fatal(err)
	}
	if a := pay("via-1", 100); a.status != 201 || relayed.Load() != 1 {
		t.Errorf("through the proxy: %d, %d relayed", a.status, relayed.Load())
	}
	if err := s.Processor().Via(""); err != nil {
		t.Fatal(err)
	}
	if a := pay("via-2", 100); a.status != 201 || relayed.Load() != 1 {
		t.Errorf("direct again: %d, %d relayed", a.status, relayed.Load())
	}
	for _, bad := range []string{"127.0.0.1:80", "https://x", "http://", "http://h:1/path", "%"} {
		if err := s.Processor().Via(bad); err == nil {
			t.Errorf("Via(%q) was taken", bad)
		}
	}
}
