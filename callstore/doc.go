// Package callstore keeps every call the gateway answers as a Record and
// answers questions about them: relia's call log, for debugging one call,
// auditing who called what, and the analysis of trends and forecasts
// (package analyze).
//
// A call travels one way:
//
//	gateway --Record--> Writer --batches--> Sink: DB (SQLite or PostgreSQL), OTLPSink
//	                      \--> spool file while the sink is slow or down, replayed in order
//
//	relia calls, relia analyze --> Querier: DB, or Client over a gateway's admin API (Handler)
//
// The gateway fills a Record per request and calls Recorder.Record, which
// copies it into the Writer's current batch and returns: no request
// waits on a database. The Writer hands full batches to its Sink, spools
// them to a local file when the sink falls behind or fails, replays them
// in order when it is back, and drops records only past the spool's disk
// cap, counting every one (relia_calls_dropped_total).
//
// A DB stores a batch as one row (compressed, with what queries need to
// skip it) and adds it to per-minute and per-hour rollups, which keep
// each group's counts and its latency histogram, so that a percentile
// over any range and any grouping is read from merged rollups, never an
// average of percentiles. Retention deletes raw calls sooner than
// rollups. The DB also keeps the append-only audit log and API
// management's subscriptions.
//
//	store, err := callstore.Open(ctx, "/var/lib/relia/calls.db", callstore.Options{})
//	w, err := callstore.NewWriter(store, callstore.WriterOptions{SpoolPath: "/var/lib/relia/calls.spool"})
//	w.Record(&callstore.Record{Time: start, RequestID: rid, Route: "orders", Status: 200, Outcome: "ok", Latency: lat})
//	...
//	calls, err := store.Calls(ctx, callstore.Query{Route: "orders", Status: "5xx", Limit: 20})
//	aggs, err := store.Aggregate(ctx, callstore.AggregateQuery{From: dayStart, To: dayEnd, By: []callstore.Dimension{callstore.ByRoute}})
//	p99 := aggs[0].Latency.Quantile(0.99)
//
// Headers and bodies are kept only for routes that opt in (Capture),
// capped and redacted before they are recorded.
package callstore
