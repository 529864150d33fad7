// Package gcfloor keeps the Go collector from running while the heap is
// small: it lets the heap grow at least a floor above what the last
// collection left live before the next one starts.
//
// The collector's default (GOGC=100) starts a cycle once the heap has
// doubled. A gateway's live heap is small, a few megabytes, while a busy
// one allocates tens of megabytes a second, so it collects several times
// a second; on one core each cycle's marking takes a share of the
// processor for several milliseconds, and the requests and first tokens
// that arrive meanwhile wait (bench/ai's time-to-first-token step shows
// the tail it makes). With a floor of 64 MiB the same load collects a
// few times a minute; a heap whose live part is larger than the floor
// collects as it would anyway, at twice its live size.
//
// After each collection the heap goal is set to the live heap plus the
// floor, and never below the default's:
//
//	stop := gcfloor.Keep(64 << 20)
//	defer stop()
//
// GOGC set in the environment is the operator's own choice, and Keep
// then leaves the collector alone.
package gcfloor
