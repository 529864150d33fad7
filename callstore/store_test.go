package callstore

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// call returns a record with the usual fields set, i seconds after t0.
func call(i int, route, tenant string, status int, lat time.Duration) Record {
	outcome := "ok"
	if status >= 500 || status == 429 {
		outcome = "status"
	}
	return Record{
		Time: t0.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprintf("req-%d", i), TraceID: fmt.Sprintf("%032x", i+1),
		Gateway: "gw-1", Route: route, API: "orders", APIVersion: "v1", Tenant: tenant, KeyID: "key-" + tenant,
		Method: "GET", PathTemplate: "/orders/{id}", Path: fmt.Sprintf("/orders/%d", i), Status: status, Outcome: outcome,
		Latency: lat, Upstream: lat - time.Millisecond, TTFB: lat / 2, Target: "127.0.0.1:9001", Attempts: 1, BytesIn: 10, BytesOut: 100,
	}
}

func TestStoreWriteAndQuery(t *testing.T) {
	eachStore(t, t0.Add(time.Hour), func(t *testing.T, s *DB, _ *clock.Fake) {
		ctx := testContext(t)
		recs := []Record{
			call(0, "orders", "acme", 200, 10*time.Millisecond),
			call(1, "orders", "acme", 503, 20*time.Millisecond),
			call(2, "users", "globex", 200, 30*time.Millisecond),
		}
		recs[1].Reason = "upstream_5xx"
		recs[1].Steps = []Step{
			{Kind: StepAttempt, Target: "127.0.0.1:9001", Status: 503, Outcome: "status", Reason: "upstream_5xx", Latency: 5 * time.Millisecond},
			{Kind: StepFallback, Status: 200, Outcome: "ok", Latency: time.Millisecond},
		}
		recs[2].Model, recs[2].Provider, recs[2].InputTokens, recs[2].OutputTokens, recs[2].Cost = "gpt-4o", "openai", 100, 50, 0.0125
		recs[2].RequestHeaders = []Header{{"Content-Type", "application/json"}}
		recs[2].RequestBody = `{"q":"x"}`
		if err := s.Write(ctx, recs); err != nil {
			t.Fatal(err)
		}
		all, err := s.Calls(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 || all[0].RequestID != "req-2" || all[2].RequestID != "req-0" {
			t.Fatalf("got %d calls, want 3 newest first: %+v", len(all), all)
		}
		for i, got := range all {
			want := recs[2-i]
			want.Seq = got.Seq
			if got.Seq == 0 || !reflect.DeepEqual(got, want) {
				t.Errorf("call %d read back as\n%+v\nwant\n%+v", i, got, want)
			}
		}
		for name, c := range map[string]struct {
			q    Query
			want []string
		}{
			"route":      {Query{Route: "orders"}, []string{"req-1", "req-0"}},
			"tenant":     {Query{Tenant: "globex"}, []string{"req-2"}},
			"status":     {Query{Status: "503"}, []string{"req-1"}},
			"class":      {Query{Status: "2xx"}, []string{"req-2", "req-0"}},
			"failed":     {Query{Failed: true}, []string{"req-1"}},
			"model":      {Query{Model: "gpt-4o"}, []string{"req-2"}},
			"text":       {Query{Text: "UPSTREAM_5"}, []string{"req-1"}},
			"text path":  {Query{Text: "orders/2"}, []string{"req-2"}},
			"text wild":  {Query{Text: "%"}, nil},
			"request id": {Query{RequestID: "req-1"}, []string{"req-1"}},
			"trace id":   {Query{TraceID: fmt.Sprintf("%032x", 3)}, []string{"req-2"}},
			"range":      {Query{From: t0.Add(time.Second), To: t0.Add(2 * time.Second)}, []string{"req-1"}},
			"limit":      {Query{Limit: 1}, []string{"req-2"}},
			"after":      {Query{AfterSeq: all[2].Seq}, []string{"req-1", "req-2"}},
		} {
			got, err := s.Calls(ctx, c.q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.RequestID)
			}
			if !reflect.DeepEqual(ids, c.want) {
				t.Errorf("%s: got %v, want %v", name, ids, c.want)
			}
		}
		if _, err := s.Calls(ctx, Query{Status: "5x"}); !errors.Is(err, ErrBadQuery) {
			t.Errorf("status 5x: err %v, want ErrBadQuery", err)
		}
	})
}

func TestStoreAggregates(t *testing.T) {
	eachStore(t, t0.Add(48*time.Hour), func(t *testing.T, s *DB, _ *clock.Fake) {
		ctx := testContext(t)
		// Two batches over two hours: the rollups of both add up.
		var b1, b2 []Record
		for i := range 120 {
			b1 = append(b1, call(i*60, "orders", "acme", 200, time.Duration(i+1)*time.Millisecond))
		}
		for i := range 60 {
			st := 200
			if i%10 == 0 {
				st = 500
			}
			b2 = append(b2, call(i*60+30, "users", "globex", st, 5*time.Millisecond))
		}
		b2 = append(b2, call(59*60, "orders", "acme", 200, 121*time.Millisecond))
		for _, b := range [][]Record{b1, b2} {
			if err := s.Write(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		check := func(name string, q AggregateQuery, want map[string][2]int64) []Aggregate {
			t.Helper()
			got, err := s.Aggregate(ctx, q)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			m := map[string][2]int64{}
			for _, a := range got {
				m[a.Time.Format("15:04")+" "+a.Key.String()] = [2]int64{a.Calls, a.Failed}
				if a.Latency.Count() != a.Calls {
					t.Errorf("%s: %s: histogram holds %d calls, not %d", name, a.Key, a.Latency.Count(), a.Calls)
				}
			}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("%s: got %v, want %v", name, m, want)
			}
			return got
		}
		day := check("day by route", AggregateQuery{From: t0, To: t0.Add(24 * time.Hour), By: []Dimension{ByRoute}},
			map[string][2]int64{"10:00 route=orders": {121, 0}, "10:00 route=users": {60, 6}})
		for _, a := range day {
			if a.Key.Route == "orders" {
				// The histogram's cells are 1/1024 of their value wide.
				if p50 := a.Latency.Quantile(0.5); p50 < 61*time.Millisecond || p50 > 61*time.Millisecond*1025/1024 {
					t.Errorf("orders p50 %s, want 61ms", p50)
				}
				if p99 := a.Latency.Quantile(0.99); p99 < 120*time.Millisecond || p99 > 120*time.Millisecond*1025/1024 {
					t.Errorf("orders p99 %s, want 120ms", p99)
				}
			}
		}
		check("hourly", AggregateQuery{From: t0, To: t0.Add(2 * time.Hour), Step: Hour},
			map[string][2]int64{"10:00 all": {121, 6}, "11:00 all": {60, 0}})
		check("minutes filtered", AggregateQuery{From: t0, To: t0.Add(3 * time.Minute), Step: Minute, Tenant: "globex", By: []Dimension{ByTenant}},
			map[string][2]int64{"10:00 tenant=globex": {1, 1}, "10:01 tenant=globex": {1, 0}, "10:02 tenant=globex": {1, 0}})
		check("days", AggregateQuery{From: t0.Add(-10 * time.Hour), To: t0.Add(14 * time.Hour), Step: Day},
			map[string][2]int64{"00:00 all": {181, 6}})

		n, err := s.Compact(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		// Batch 2 added a second row to orders' 10:59 minute and to its
		// 10:00 hour.
		if n != 2 {
			t.Errorf("compaction merged %d rows, want 2", n)
		}
		check("day by route after compaction", AggregateQuery{From: t0, To: t0.Add(24 * time.Hour), By: []Dimension{ByRoute}},
			map[string][2]int64{"10:00 route=orders": {121, 0}, "10:00 route=users": {60, 6}})

		for _, q := range []AggregateQuery{{}, {From: t0, Step: 30 * time.Second}, {From: t0, To: t0.Add(time.Second)}, {From: t0, By: []Dimension{"colour"}}} {
			if _, err := s.Aggregate(ctx, q); !errors.Is(err, ErrBadQuery) {
				t.Errorf("%+v: err %v, want ErrBadQuery", q, err)
			}
		}
	})
}

func TestStoreRetention(t *testing.T) {
	eachStore(t, t0, func(t *testing.T, s *DB, clk *clock.Fake) {
		ctx := testContext(t)
		if err := s.Write(ctx, []Record{call(0, "orders", "acme", 200, time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
		ret := Retention{Calls: Day, Minutes: 2 * Day, Hours: 3 * Day}
		count := func() (calls, minutes, hours int) {
			got, err := s.Calls(ctx, Query{})
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range []time.Duration{Minute, Hour} {
				a, err := s.Aggregate(ctx, AggregateQuery{From: t0.Truncate(Hour), To: t0.Add(Hour), Step: res})
				if err != nil {
					t.Fatal(err)
				}
				if len(a) > 0 {
					if res == Minute {
						minutes = 1
					} else {
						hours = 1
					}
				}
			}
			return len(got), minutes, hours
		}
		for _, c := range []struct {
			at    time.Duration
			calls int
			mins  int
			hours int
		}{
			{23 * time.Hour, 1, 1, 1},
			{25 * time.Hour, 0, 1, 1},
			{49 * time.Hour, 0, 0, 1},
			{73 * time.Hour, 0, 0, 0},
		} {
			clk.Set(t0.Add(c.at))
			if _, err := s.Maintain(ctx, ret); err != nil {
				t.Fatal(err)
			}
			if calls, mins, hours := count(); calls != c.calls || mins != c.mins || hours != c.hours {
				t.Errorf("after %s: %d calls, %d minute and %d hour rollups; want %d, %d, %d", c.at, calls, mins, hours, c.calls, c.mins, c.hours)
			}
		}
	})
}

func TestAuditLogIsAppendOnly(t *testing.T) {
	eachStore(t, t0, func(t *testing.T, s *DB, _ *clock.Fake) {
		ctx := testContext(t)
		for _, e := range []AuditEntry{
			{Actor: "acme", Action: "subscription.request", Tenant: "acme", API: "orders"},
			{Actor: "alice", Action: "subscription.approve", Tenant: "acme", API: "orders", Detail: "ok for Q3"},
			{Actor: "gateway", Action: "config.reload", Detail: "sha256:abc"},
		} {
			if _, err := s.AppendAudit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Audit(ctx, AuditQuery{Action: "subscription."})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Action != "subscription.request" || got[1].Detail != "ok for Q3" || !got[0].Time.Equal(t0) {
			t.Fatalf("subscription entries: %+v", got)
		}
		if got, _ := s.Audit(ctx, AuditQuery{Limit: 1}); len(got) != 1 || got[0].Action != "config.reload" {
			t.Fatalf("latest entry: %+v", got)
		}
		for _, stmt := range []string{`UPDATE audit_log SET actor = 'mallory'`, `DELETE FROM audit_log`} {
			_, err := s.db.ExecContext(ctx, stmt)
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err %v, want the append-only refusal", stmt, err)
			}
		}
		if got, _ := s.Audit(ctx, AuditQuery{}); len(got) != 3 || got[1].Actor != "alice" {
			t.Fatalf("the log changed: %+v", got)
		}
	})
}

func TestSubscriptionsWithAudit(t *testing.T) {
	eachStore(t, t0, func(t *testing.T, s *DB, _ *clock.Fake) {
		ctx := testContext(t)
		sub := Subscription{Tenant: "acme", API: "orders", State: SubscriptionPending, RequestedAt: t0, Note: "please"}
		if _, err := s.PutSubscription(ctx, sub, AuditEntry{Actor: "acme", Action: "subscription.request", Tenant: "acme", API: "orders"}); err != nil {
			t.Fatal(err)
		}
		sub.State, sub.DecidedAt, sub.DecidedBy = SubscriptionApproved, t0.Add(time.Minute), "alice"
		if _, err := s.PutSubscription(ctx, sub, AuditEntry{Actor: "alice", Action: "subscription.approve", Tenant: "acme", API: "orders"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Subscriptions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], sub) {
			t.Fatalf("got %+v, want %+v", got, sub)
		}
		// A change whose audit entry cannot be written is not made.
		sub.State = SubscriptionRevoked
		if _, err := s.PutSubscription(ctx, sub, AuditEntry{Actor: "alice"}); err == nil {
			t.Fatal("a change with an audit entry without action went through")
		}
		if got, _ := s.Subscriptions(ctx); got[0].State != SubscriptionApproved {
			t.Fatalf("state %s after a failed change, want approved", got[0].State)
		}
	})
}
