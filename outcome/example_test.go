package outcome_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/relia-dev/relia/outcome"
)

func Example() {
	rec, err := outcome.NewRecorder(outcome.Options{}) // 1s buckets, latencies up to 60s
	if err != nil {
		panic(err)
	}
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	for i := range 1000 {
		o := outcome.Outcome{
			Start:   start.Add(time.Duration(i) * 10 * time.Millisecond), // 100 a second for 10s
			Latency: time.Duration(20+i%100) * time.Millisecond,
			Status:  200,
		}
		if i%250 == 0 {
			o.Status = 503
		}
		o.Class = outcome.ClassifyResponse(o.Status, nil)
		rec.Record(o)
	}

	// SLIs over the first five seconds.
	w := rec.Window(start, start.Add(5*time.Second))
	good, total := w.Good(nil)
	fmt.Printf("availability %d/%d\n", good, total)
	fmt.Printf("p95 %v\n", w.Latency.Quantile(0.95))
	fmt.Printf("under 100ms %d/%d\n", w.Latency.CountAtOrBelow(100*time.Millisecond), w.Latency.Count())
	// Output:
	// availability 498/500
	// p95 114.047ms
	// under 100ms 405/500
}

func ExampleClassify() {
	err := fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
	fmt.Println(outcome.Classify(err))
	fmt.Println(outcome.Classify(errors.New("unexpected")))
	fmt.Println(outcome.ClassifyResponse(429, nil))
	// Output:
	// refused
	// other
	// status
}

func ExampleRecorder_Merge() {
	// Two segments of one load test, each with its own recorder.
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	var seg1, seg2, all outcome.Recorder
	seg1.Record(outcome.Outcome{Start: start, Latency: 10 * time.Millisecond, Status: 200})
	seg2.Record(outcome.Outcome{Start: start.Add(1500 * time.Millisecond), Class: outcome.ClassTimeout, Latency: time.Second})
	for _, seg := range []*outcome.Recorder{&seg1, &seg2} {
		if err := all.Merge(seg); err != nil {
			panic(err)
		}
	}
	for _, b := range all.Series() {
		fmt.Println(b.From.Format(time.TimeOnly), b.Total, b.ByClass[outcome.ClassTimeout])
	}
	// Output:
	// 09:00:00 1 0
	// 09:00:01 1 1
}

func ExampleRecorder_MarshalJSON() {
	var rec outcome.Recorder
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	rec.Record(outcome.Outcome{Start: start, Latency: 12 * time.Millisecond, Status: 200, BytesIn: 512, BytesOut: 64})
	rec.Record(outcome.Outcome{Start: start, Latency: 40 * time.Millisecond, ServiceTime: 9 * time.Millisecond, Status: 200})
	rec.Record(outcome.Outcome{Start: start, Class: outcome.ClassDropped})
	data, err := json.MarshalIndent(&rec, "", "  ")
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
	// Output:
	// {
	//   "schema": "relia/outcome/v1",
	//   "bucket_width_ns": 1000000000,
	//   "max_latency_ns": 60000000000,
	//   "lowest_discernible_ns": 1000,
	//   "significant_digits": 3,
	//   "status_codes": {
	//     "200": 2
	//   },
	//   "buckets": [
	//     {
	//       "start": "2025-11-28T09:00:00Z",
	//       "classes": {
	//         "dropped": 1,
	//         "ok": 2
	//       },
	//       "status_classes": [
	//         1,
	//         0,
	//         2,
	//         0,
	//         0,
	//         0
	//       ],
	//       "bytes_in": 512,
	//       "bytes_out": 64,
	//       "latency": [
	//         [
	//           12000,
	//           1
	//         ],
	//         [
	//           40000,
	//           1
	//         ]
	//       ],
	//       "service_time": [
	//         [
	//           9000,
	//           1
	//         ],
	//         [
	//           12000,
	//           1
	//         ]
	//       ]
	//     }
	//   ]
	// }
}

func ExampleSummary_Good() {
	var rec outcome.Recorder
	start := time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)
	for _, c := range []outcome.Class{outcome.ClassOK, outcome.ClassOK, outcome.ClassStatus, outcome.ClassDropped} {
		rec.Record(outcome.Outcome{Start: start, Class: c, Latency: time.Millisecond})
	}
	s := rec.Total()
	good, total := s.Good(nil)
	fmt.Println("strict:", good, total)
	// Load shed on purpose does not burn the budget.
	good, total = s.Good(func(c outcome.Class) bool { return c == outcome.ClassOK || c == outcome.ClassDropped })
	fmt.Println("shedding forgiven:", good, total)
	// Output:
	// strict: 2 4
	// shedding forgiven: 3 4
}

func ExampleHistogram_Quantile() {
	var h outcome.Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	// Values are reported as the top of their cell: within 0.1%.
	fmt.Println(h.Quantile(0.5), h.Quantile(0.99), h.Max())
	// Output: 500.223ms 990.207ms 1.000447s
}
