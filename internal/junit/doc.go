// Package junit writes JUnit XML reports, the test-result format CI
// systems show: relia load writes its thresholds as test cases (--junit),
// so that a CI job lists which threshold failed and by how much.
//
// A report is built as values and written once:
//
//	s := junit.Suites{Suites: []junit.Suite{{Name: "checkout", Cases: []junit.Case{
//		{Name: "http_req_duration p(99)<500", Classname: "relia.load.checkout"},
//		{Name: "http_req_failed rate<0.01", Classname: "relia.load.checkout",
//			Failure: &junit.Problem{Message: "rate 0.042"}},
//	}}}}
//	err := junit.Write(os.Stdout, s)
package junit
