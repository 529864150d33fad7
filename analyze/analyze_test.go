package analyze

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/report/reporttest"
)

// storeWithTraffic writes three weeks of calls: "orders" with daily
// seasons and 10% more traffic in the last week, "chat" AI calls of two
// tenants at a flat rate, and a burst on orders one afternoon.
func storeWithTraffic(t *testing.T) (*callstore.DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	end := t0.Add(3 * callstore.Week)
	s, err := callstore.Open(ctx, filepath.Join(t.TempDir(), "calls.db"), callstore.Options{Clock: clock.NewFake(end)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var batch []callstore.Record
	n := 0
	add := func(r callstore.Record) {
		n++
		r.RequestID = fmt.Sprint("r", n)
		r.Method, r.Path, r.Attempts = "GET", "/"+r.Route, 1
		if r.Outcome == "" {
			r.Outcome = "ok"
		}
		batch = append(batch, r)
		if len(batch) == 2000 {
			if err := s.Write(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	for h := 0; h < 3*168; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		calls := 40 + 25*math.Sin(2*math.Pi*float64(h)/24)
		if h >= 2*168 {
			calls *= 1.1
		}
		if h == 2*168+15 {
			calls *= 4 // the burst
		}
		for i := range int(calls) {
			st, oc := 200, "ok"
			if i%50 == 0 {
				st, oc = 503, "status"
			}
			add(callstore.Record{Time: at.Add(time.Duration(i) * time.Second), Route: "orders", API: "orders", Tenant: "acme", KeyID: "k-acme",
				Status: st, Outcome: oc, Latency: time.Duration(10+i%20) * time.Millisecond})
		}
		for i := range 6 {
			tenant := []string{"acme", "globex"}[i%2]
			add(callstore.Record{Time: at.Add(time.Duration(i) * time.Minute), Route: "chat", Tenant: tenant, KeyID: "k-" + tenant,
				Model: "gpt-4o", Provider: "openai", Status: 200, InputTokens: 100, OutputTokens: 50, Cost: 0.001, Latency: 300 * time.Millisecond})
		}
	}
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}
	return s, end
}

func TestAnalysisOfStoredCalls(t *testing.T) {
	t.Parallel()
	s, end := storeWithTraffic(t)
	a, err := Run(context.Background(), s, Options{From: t0, To: end, Capacity: 0.02})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ByRoute) != 2 || a.ByRoute[0].Key.Route != "orders" || a.Total.Calls != a.ByRoute[0].Calls+a.ByRoute[1].Calls {
		t.Fatalf("by route: %+v, total %d", a.ByRoute, a.Total.Calls)
	}
	if r := a.ByRoute[0]; r.ErrorRate < 0.02 || r.ErrorRate > 0.04 || r.P50MS < 10 || r.P99MS > 30 {
		t.Errorf("orders: error rate %.3f, p50 %.1f, p99 %.1f", r.ErrorRate, r.P50MS, r.P99MS)
	}
	if len(a.Cost) != 2 || a.Cost[0].Key.Model != "gpt-4o" || math.Abs(a.Cost[0].Cost-0.001*3*504) > 1e-6 || a.Cost[0].InputTokens != 100*3*504 {
		t.Errorf("cost: %+v", a.Cost)
	}
	var orders *Change
	for i := range a.WeekOverWeek {
		if a.WeekOverWeek[i].Key.Route == "orders" {
			orders = &a.WeekOverWeek[i]
		}
	}
	if orders == nil || orders.Ratio < 0.08 || orders.Ratio > 0.14 {
		t.Errorf("orders week over week: %+v, want about +10%% (+ the burst)", orders)
	}
	rt := a.Routes[0]
	if rt.Route != "orders" || rt.Forecast == nil || len(rt.Forecast.Points) != 168 {
		t.Fatalf("orders trend: %+v", rt.ForecastNote)
	}
	burst := t0.Add((2*168 + 15) * time.Hour)
	found := false
	for _, x := range rt.Anomalies {
		found = found || x.T.Equal(burst) && x.Score > 0
	}
	if !found {
		t.Errorf("the burst at %s is not among the anomalies %+v", burst, rt.Anomalies)
	}
	// 0.02 req/s is 72 calls an hour: orders' daily peak (about 71.5)
	// may pass it, its mean (44) never.
	if rt.MayExceed == nil {
		t.Errorf("orders never may exceed 72 calls an hour")
	}

	var text bytes.Buffer
	if err := a.WriteText(&text, 0.02); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ROUTE", "orders", "chat", "forecast: orders", "anomaly: orders at " + burst.Format(time.RFC3339)} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the text does not say %q:\n%s", want, text.String())
		}
	}

	path := filepath.Join(t.TempDir(), "analysis.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Page(0.02).WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	reporttest.RequireChromium(t)
	res := reporttest.OpenInChromium(t, path)
	if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 || len(res.Requests) != 1 {
		t.Fatalf("console errors %v, failed requests %v", res.ConsoleErrors, res.FailedRequests)
	}
	var charts int
	res.Eval(t, `document.querySelectorAll("svg.plot").length`, &charts)
	if charts < 5 {
		t.Errorf("%d charts, want traffic, errors, latency and forecasts", charts)
	}
	var body string
	res.Eval(t, `document.body.innerText`, &body)
	for _, want := range []string{"Week over week", "Top consumers", "gpt-4o", "Anomalies", "Holt-Winters"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
	reporttest.SaveArtifact(t, "analysis.png", res.ScreenshotPNG)
}
