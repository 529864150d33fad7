package load_test

import (
	"fmt"
	"time"

	"github.com/relia-dev/relia/load"
)

func ExampleSchedule() {
	// Ramp from 0 to 100 requests per second over 10 s, then hold for 10 s.
	s, err := load.NewSchedule(0, []load.RateStage{
		{Duration: 10 * time.Second, Target: 100},
		{Duration: 10 * time.Second, Target: 100},
	})
	if err != nil {
		panic(err)
	}
	first, _ := s.Arrival(1)
	mid, _ := s.Arrival(500)
	fmt.Println(s.Total(), first.Round(time.Millisecond), mid)
	// Output: 1500 447ms 10s
}

func ExampleParseThreshold() {
	th, err := load.ParseThreshold("http_req_duration{name:checkout}", "p(95)<200")
	if err != nil {
		panic(err)
	}
	fmt.Println(th.Metric, th.Tags["name"], th.Aggregation, th.Percentile, th.Op, th.Value)
	fmt.Println(th.Holds(180), th.Holds(250))
	// Output:
	// http_req_duration checkout p 95 < 200
	// true false
}
