package junit_test

import (
	"os"

	"github.com/relia-dev/relia/internal/junit"
)

func ExampleWrite() {
	s := junit.Suites{Name: "relia load", Suites: []junit.Suite{{Name: "checkout", Cases: []junit.Case{
		{Name: "http_req_duration p(99)<500", Classname: "relia.load.checkout"},
		{Name: "http_req_failed rate<0.01", Classname: "relia.load.checkout",
			Failure: &junit.Problem{Message: "http_req_failed rate<0.01 failed: 4.20%", Type: "threshold"}},
	}}}}
	_ = junit.Write(os.Stdout, s)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <testsuites name="relia load">
	//   <testsuite name="checkout" tests="2" failures="1" errors="0" skipped="0" time="0">
	//     <testcase name="http_req_duration p(99)&lt;500" classname="relia.load.checkout" time="0"></testcase>
	//     <testcase name="http_req_failed rate&lt;0.01" classname="relia.load.checkout" time="0">
	//       <failure message="http_req_failed rate&lt;0.01 failed: 4.20%" type="threshold"></failure>
	//     </testcase>
	//   </testsuite>
	// </testsuites>
}
