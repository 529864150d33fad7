// Package load is relia's load generator. This part of it holds the pure
// pieces the executors are built on: the open-model arrival Schedule (when
// request n is due, as a function of n, so pacing is exact and tested
// without a clock), Segment (process i of N takes every N-th arrival or VU,
// so N processes together send exactly the whole test) and k6-style
// Thresholds.
//
//	s, _ := load.NewSchedule(0, []load.RateStage{{Duration: time.Minute, Target: 1000}})
//	at, _ := s.Arrival(n) // send request n at start+at
//
//	th, _ := load.ParseThreshold("http_req_duration", "p(99)<500")
//	ok := th.Holds(observedP99Millis)
package load
