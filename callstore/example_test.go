package callstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/relia-dev/relia/callstore"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "calls")
	defer os.RemoveAll(dir)
	store, err := callstore.Open(ctx, filepath.Join(dir, "calls.db"), callstore.Options{})
	if err != nil {
		panic(err)
	}
	defer store.Close()
	w, err := callstore.NewWriter(store, callstore.WriterOptions{SpoolPath: filepath.Join(dir, "calls.spool")})
	if err != nil {
		panic(err)
	}
	start := time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)
	for i, status := range []int{200, 200, 503} {
		outcome := "ok"
		if status >= 500 {
			outcome = "status"
		}
		w.Record(&callstore.Record{Time: start.Add(time.Duration(i) * time.Second), RequestID: fmt.Sprint("req-", i),
			Route: "orders", Tenant: "acme", Method: "GET", Path: "/orders/1", Status: status, Outcome: outcome,
			Latency: time.Duration(10*(i+1)) * time.Millisecond})
	}
	if err := w.Close(ctx); err != nil { // flushes
		panic(err)
	}
	failed, _ := store.Calls(ctx, callstore.Query{Route: "orders", Status: "5xx"})
	fmt.Println("failed:", failed[0].RequestID, failed[0].Status)
	aggs, _ := store.Aggregate(ctx, callstore.AggregateQuery{From: start, To: start.Add(time.Hour), By: []callstore.Dimension{callstore.ByRoute}})
	fmt.Printf("%s: %d calls, %.0f%% failed, max %s\n", aggs[0].Key, aggs[0].Calls, 100*aggs[0].ErrorRate(), aggs[0].Latency.Max())
	// Output:
	// failed: req-2 503
	// route=orders: 3 calls, 33% failed, max 30.015ms
}
