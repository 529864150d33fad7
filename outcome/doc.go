// Package outcome is relia's record of what became of each request, and
// the Recorder that every part of relia feeds: the load generator for the
// requests it sends, the gateway for those it proxies and the fault proxy
// for those it relays. The SLO engine, the experiment verdict and the
// reports all read the same Recorder, so one SLI definition serves every
// source of traffic.
//
//	rec, err := outcome.NewRecorder(outcome.Options{}) // 1s buckets, 60s max latency
//	...
//	// on every request, from any goroutine:
//	rec.Record(outcome.Outcome{
//		Start:   scheduled,                // or the send time in a closed model
//		Latency: done.Sub(scheduled),
//		Status:  resp.StatusCode,
//		Class:   outcome.ClassifyResponse(resp.StatusCode, err),
//	})
//	...
//	w := rec.Window(from, to)                        // buckets starting in [from, to)
//	good, total := w.Good(nil)                       // availability SLI
//	p95 := w.Latency.Quantile(0.95)                  // latency SLI
//	fast := w.Latency.CountAtOrBelow(200 * time.Millisecond) // share under a threshold: fast/w.Latency.Count()
//
// # Buckets, windows and merging
//
// Outcomes are counted in fixed-width time buckets by their Start. Buckets
// are aligned to the Unix epoch (bucket i covers [i*width, (i+1)*width)),
// so recorders in different goroutines, execution segments or processes
// line up, and Merge adds them exactly: every count and every histogram
// cell is a sum, and SLIs are ratios of summed counts. A window query
// covers the buckets whose start lies in it.
//
// # Histograms
//
// Latency and service-time histograms are HDR-style log-linear with a
// lowest discernible value of 1µs and 3 significant digits (fixed):
// values are truncated to whole microseconds, every microsecond below
// 2048µs has its own cell, and each power of two above is split into 1024
// cells, so a cell is never wider than 1/1024 of its values. Quantiles are
// therefore within 0.1% of the exact value (within 1µs below 1ms). Values
// above the recorder's MaxLatency count as MaxLatency and in
// Summary.Clamped. Dropped outcomes (never sent) count in totals but have
// no latency.
//
// # Concurrency
//
// Record is safe from any number of goroutines and does not allocate once
// its bucket is in use. Each goroutine keeps to one of a few stripes per
// core, each a share of every bucket behind its own lock, so cores
// recording at once neither wait for each other nor write the same cache
// lines. Queries may run while outcomes are being recorded; they read each
// stripe under its lock but not all stripes at one instant, so outcomes
// recorded during a query may or may not be in it. Everything recorded
// before a query began is in it.
//
// # Memory
//
// A bucket costs about 0.5 KB (its header and, per stripe that recorded
// into it, 256 bytes of counters), plus 4 bytes per outcome (8 when its
// service time differs from its latency), logged in 1 KB segments. A
// stripe logs up to 2048 entries per bucket; beyond that its outcomes go
// to dense cells, 1 KB per 256 cells of latency range in use, so a busy
// bucket's histograms stop growing with its traffic. Measured: 1000
// outcomes a second, log-normal around 20ms, a quarter with their own
// service time, cost 5.7 KB per 1s bucket, 21 MB per hour
// (TestBucketMemory). The recorder itself adds 64 bytes per stripe and
// 4.8 KB per stripe in use for the per-status-code totals.
//
// # Serialisation
//
// MarshalJSON and UnmarshalJSON use a versioned schema so that load
// result files can embed a recorder and `relia load merge` can add
// recorders from several processes. Schema "relia/outcome/v1":
//
//	{
//	  "schema": "relia/outcome/v1",
//	  "bucket_width_ns": 1000000000,     // Options.BucketWidth
//	  "max_latency_ns": 60000000000,     // Options.MaxLatency
//	  "lowest_discernible_ns": 1000,     // the histogram layout: always
//	  "significant_digits": 3,           //   these two values in v1
//	  "status_codes": {"200": 2},        // whole-recorder totals, 100-599
//	  "buckets": [                       // buckets holding outcomes, ascending
//	    {
//	      "start": "2025-11-28T09:00:00Z",          // RFC 3339, on a bucket boundary
//	      "classes": {"ok": 2, "dropped": 1},       // by Class name; zero counts omitted
//	      "status_classes": [1, 0, 2, 0, 0, 0],     // no status, 1xx, 2xx, 3xx, 4xx, 5xx
//	      "bytes_in": 512, "bytes_out": 64,         // omitted when 0
//	      "clamped": 0,                             // omitted when 0
//	      "latency": [[12000, 1], [40000, 1]],      // [cell's lowest value in µs, count], ascending
//	      "service_time": [[9000, 1], [12000, 1]]   // same form; omitted when equal to latency
//	    }
//	  ]
//	}
//
// Readers reject an unknown schema or field, a bucket off its boundary or
// out of order, negative counts, and cell values that are not the lowest
// value of a cell or lie above max_latency_ns. Counts are exact integers;
// a decoded recorder answers every query exactly as the encoded one did.
package outcome
