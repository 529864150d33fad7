package callstore

import (
	"errors"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func TestAdminAPIAnswersAsTheStore(t *testing.T) {
	t.Parallel()
	s := openStore(t, filepath.Join(t.TempDir(), "calls.db"), clock.NewFake(t0.Add(time.Hour)))
	ctx := testContext(t)
	recs := []Record{call(0, "orders", "acme", 200, 10*time.Millisecond), call(1, "orders", "acme", 503, 20*time.Millisecond), call(2, "users", "globex", 200, 5*time.Millisecond)}
	recs[1].Reason = "upstream_5xx"
	recs[1].Steps = []Step{{Kind: StepAttempt, Target: "a", Status: 503, Outcome: "status", Latency: time.Millisecond}, {Kind: StepFallback, Status: 200, Outcome: "ok"}}
	if err := s.Write(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, AuditEntry{Actor: "alice", Action: "subscription.approve", Tenant: "acme", API: "orders"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(s))
	defer srv.Close()
	c := NewClient(srv.URL, srv.Client())

	for _, q := range []Query{{}, {Route: "orders", Status: "5xx"}, {Text: "orders/2", Limit: 1}, {From: t0.Add(time.Second), Failed: true}, {AfterSeq: 1}} {
		want, err := s.Calls(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Calls(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: over HTTP\n%+v\nfrom the store\n%+v", q, got, want)
		}
	}
	story, err := c.Call(ctx, "req-1")
	if err != nil || len(story) != 1 || len(story[0].Steps) != 2 || story[0].Reason != "upstream_5xx" {
		t.Fatalf("call req-1: %+v, %v", story, err)
	}
	if byTrace, err := c.Call(ctx, recs[2].TraceID); err != nil || len(byTrace) != 1 || byTrace[0].RequestID != "req-2" {
		t.Fatalf("call by trace id: %+v, %v", byTrace, err)
	}
	if none, err := c.Call(ctx, "nope"); err != nil || none != nil {
		t.Fatalf("unknown call: %+v, %v", none, err)
	}

	aq := AggregateQuery{From: t0, To: t0.Add(time.Hour), By: []Dimension{ByRoute}}
	want, _ := s.Aggregate(ctx, aq)
	got, err := c.Aggregate(ctx, aq)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || len(want) != 2 {
		t.Fatalf("aggregates: %d over HTTP, %d from the store", len(got), len(want))
	}
	for i := range got {
		if got[i].Key != want[i].Key || got[i].Calls != want[i].Calls || got[i].Latency.Quantile(0.99) != want[i].Latency.Quantile(0.99) || got[i].LatencySum != want[i].LatencySum {
			t.Errorf("aggregate %d: over HTTP %+v, from the store %+v", i, got[i], want[i])
		}
	}
	entries, err := c.Audit(ctx, AuditQuery{Tenant: "acme"})
	if err != nil || len(entries) != 1 || entries[0].Actor != "alice" {
		t.Fatalf("audit: %+v, %v", entries, err)
	}

	for _, bad := range []string{"/calls?status=5x", "/calls?rout=orders", "/calls?from=yesterday", "/calls/aggregate?from=2027-03-01T10:00:00Z&by=colour", "/calls/aggregate"} {
		resp, err := srv.Client().Get(srv.URL + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("%s: status %d, want 400", bad, resp.StatusCode)
		}
	}
	if _, err := c.Calls(ctx, Query{Status: "5x"}); !errors.Is(err, ErrBadQuery) {
		t.Errorf("bad query over HTTP: %v, want ErrBadQuery", err)
	}
}

func TestQueryValuesRoundTrip(t *testing.T) {
	t.Parallel()
	q := Query{From: t0, To: t0.Add(time.Hour), Route: "r", API: "a", Tenant: "t", KeyID: "k", Model: "m", Gateway: "g",
		Outcome: "ok", Status: "5xx", Failed: true, Text: "x y", RequestID: "rid", TraceID: "tid", AfterSeq: 7, Limit: 9}
	got, err := QueryFromValues(q.Values())
	if err != nil || !reflect.DeepEqual(got, q) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	aq := AggregateQuery{From: t0, To: t0.Add(time.Hour), Step: Hour, By: []Dimension{ByRoute, ByModel}, Tenant: "t", Model: "m"}
	agot, err := AggregateQueryFromValues(aq.Values())
	if err != nil || !reflect.DeepEqual(agot, aq) {
		t.Fatalf("aggregate round trip: %+v, %v", agot, err)
	}
}
