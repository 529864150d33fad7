// Package semconv holds the names of the latency histograms relia exports
// and their default bucket bounds, in one place for the code that exports
// them (the gateway, the load generator, the demo shop) and the code that
// must know them (the SLO engine, which refuses a latency threshold that
// is not a bucket bound of the histogram it reads).
//
//	buckets, ok := semconv.Buckets(semconv.HTTPServerRequestDuration)
//	// ok: relia exports it; buckets holds 0.2, the demo's 200 ms threshold
package semconv
