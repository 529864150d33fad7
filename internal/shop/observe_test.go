package shop

import (
	"context"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/outcome"
)

func TestOutcomesAndMetrics(t *testing.T) {
	t.Parallel()
	recs := map[string]*outcome.Recorder{}
	for _, name := range []string{ServiceCatalog, ServicePayments, ServiceProcessor} {
		r, err := outcome.NewRecorder(outcome.Options{})
		if err != nil {
			t.Fatal(err)
		}
		recs[name] = r
	}
	s := startShop(t, Options{Recorders: recs, NoProcessorErrors: true})
	c := testClient(t)
	for i := range 3 {
		mustCall(t, c, "GET", s.Catalog(i).URL()+"/products/1", "")
	}
	mustCall(t, c, "GET", s.Catalog(0).URL()+"/products/999", "")
	mustCall(t, c, "GET", s.Catalog(0).URL()+"/healthz", "") // not recorded
	if err := s.Processor().SetFaults(ProcessorFaults{ErrorRate: 1}); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + login(t, c, s, 2)
	mustCall(t, c, "POST", s.Endpoints()[ServicePayments][0]+"/payments", `{"amountCents": 1, "currency": "EUR"}`, "Authorization", auth, "Idempotency-Key", "m")

	all := func(r *outcome.Recorder) outcome.Summary {
		return r.Window(time.Unix(0, 0), time.Now().Add(time.Hour))
	}
	cat := all(recs[ServiceCatalog])
	if cat.Total != 4 || cat.ByClass[outcome.ClassOK] != 4 {
		t.Errorf("catalog outcomes: %+v, want 4 (a 404 is a good answer)", cat)
	}
	if got := recs[ServiceCatalog].StatusCodes(); got[200] != 3 || got[404] != 1 {
		t.Errorf("catalog statuses %v", got)
	}
	if p := all(recs[ServiceProcessor]); p.Total != 1 || p.ByClass[outcome.ClassStatus] != 1 {
		t.Errorf("processor outcomes: %+v, want one injected 503", p)
	}
	if p := all(recs[ServicePayments]); p.Total != 1 || recs[ServicePayments].StatusCodes()[502] != 1 {
		t.Errorf("payments outcomes: %+v, want one 502", p)
	}

	metrics := mustCall(t, c, "GET", s.Catalog(0).URL()+"/metrics", "").body
	for _, want := range []string{
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="200",http_route="/products/{id}"} 1`,
		`http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="404",http_route="/products/{id}"} 1`,
		`http_server_request_duration_seconds_bucket{http_request_method="GET",http_response_status_code="200",http_route="/products/{id}",le="0.005"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("catalog metrics lack %s:\n%s", want, metrics)
		}
	}
	if strings.Contains(metrics, `http_route="/healthz"`) {
		t.Error("health checks are in the metrics")
	}
	pm := mustCall(t, c, "GET", s.Processor().URL()+"/metrics", "").body
	if !strings.Contains(pm, `http_response_status_code="503",http_route="/charges"} 1`) {
		t.Errorf("processor metrics lack the injected 503:\n%s", pm)
	}
}

// goroutineIDs returns the ids of the running goroutines.
func goroutineIDs() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if m := regexp.MustCompile(`^goroutine (\d+) `).FindStringSubmatch(g); m != nil {
			out[m[1]] = g
		}
	}
	return out
}

// Not parallel: it counts every goroutine of the process.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := goroutineIDs()
	s, err := Start(context.Background(), Options{Latency: true, Resilient: true})
	if err != nil {
		t.Fatal(err)
	}
	c := testClient(t)
	auth := "Bearer " + login(t, c, s, 1)
	mustCall(t, c, "GET", s.Endpoints()[ServiceRecommendations][0]+"/recommendations/5", "")
	mustCall(t, c, "POST", s.Endpoints()[ServicePayments][0]+"/payments", `{"amountCents": 1, "currency": "EUR"}`, "Authorization", auth, "Idempotency-Key", "g")
	s.Catalog(1).Kill()
	// A payment hangs in flight at the processor while the shop closes.
	if err := s.Processor().SetFaults(ProcessorFaults{Hang: true}); err != nil {
		t.Fatal(err)
	}
	hung := make(chan answer, 1)
	go func() {
		a, _ := call(context.Background(), c, "POST", s.Endpoints()[ServicePayments][0]+"/payments", `{"amountCents": 1, "currency": "EUR"}`, "Authorization", auth, "Idempotency-Key", "h")
		hung <- a
	}()
	for s.Processor().Faulted()[FaultHang] == 0 {
		runtime.Gosched()
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if a := <-hung; a.status != 503 {
		t.Errorf("the payment in flight at Close: %d %s, want 503", a.status, a.body)
	}
	c.Transport.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	// Goroutines end a moment after the connections they served close, so
	// look again for a while, as goleak does.
	var left []string
	for range 200 {
		left = left[:0]
		for id, g := range goroutineIDs() {
			if _, ok := before[id]; !ok && !strings.Contains(g, "TestCloseLeavesNoGoroutines") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("%d goroutines left after Close:\n%s", len(left), strings.Join(left, "\n\n"))
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	s, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Errorf("close %d: %v", i, err)
		}
	}
	if err := s.Catalog(0).Restart(); err == nil || !strings.Contains(fmt.Sprint(err), "shop closed") {
		t.Errorf("restart after close: %v", err)
	}
}
