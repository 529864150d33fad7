package junit

import (
	"encoding/xml"
	"fmt"
	"io"
)

// Suites is a JUnit XML report: the <testsuites> root that CI systems
// (GitLab, Jenkins, GitHub test reporters) read.
type Suites struct {
	XMLName xml.Name `xml:"testsuites"`
	Name    string   `xml:"name,attr,omitempty"`
	Suites  []Suite  `xml:"testsuite"`
}

// Suite is one <testsuite>: a load run's thresholds, or an SLO's
// objectives. Its counts are filled by Write from its cases.
type Suite struct {
	Name      string  `xml:"name,attr"`
	Tests     int     `xml:"tests,attr"`
	Failures  int     `xml:"failures,attr"`
	Errors    int     `xml:"errors,attr"`
	Skipped   int     `xml:"skipped,attr"`
	Time      float64 `xml:"time,attr"`
	Timestamp string  `xml:"timestamp,attr,omitempty"`
	Cases     []Case  `xml:"testcase"`
}

// Case is one <testcase>: a threshold or an objective, passed unless it
// has a Failure (the verdict failed), an Error (it could not be judged
// soundly) or a Skipped (it was not judged).
type Case struct {
	Name      string   `xml:"name,attr"`
	Classname string   `xml:"classname,attr"`
	Time      float64  `xml:"time,attr"`
	Failure   *Problem `xml:"failure,omitempty"`
	Error     *Problem `xml:"error,omitempty"`
	Skipped   *Problem `xml:"skipped,omitempty"`
	// SystemOut is the case's figures as a person reads them.
	SystemOut string `xml:"system-out,omitempty"`
}

// Problem is a failure, error or skip: a one-line message and the detail.
type Problem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

// Write counts each suite's cases and writes the report, with the XML
// declaration, to w.
func Write(w io.Writer, s Suites) error {
	for i := range s.Suites {
		su := &s.Suites[i]
		su.Tests, su.Failures, su.Errors, su.Skipped = len(su.Cases), 0, 0, 0
		for _, c := range su.Cases {
			switch {
			case c.Failure != nil:
				su.Failures++
			case c.Error != nil:
				su.Errors++
			case c.Skipped != nil:
				su.Skipped++
			}
		}
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("writing junit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("writing junit report: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("writing junit report: %w", err)
	}
	return nil
}
