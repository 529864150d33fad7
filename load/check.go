package load

import (
	"bytes"
	"fmt"
	"time"
)

// Check is one assertion on a response. A request's checks run in order
// and every one is counted, so a report can say which check failed how
// often; a failed check is a check failure, never a transport error.
type Check struct {
	// Name labels the check in reports; when empty it is derived from the
	// assertion ("status in [200 201]").
	Name string
	// Status, when not empty, is the set of acceptable status codes.
	Status []int
	// MaxLatency, when positive, bounds the response time.
	MaxLatency time.Duration
	// JSONPath, when set, must exist in the JSON body; with Equals set it
	// must also render (JSONText) to exactly Equals.
	JSONPath *JSONPath
	Equals   *string
	// Contains, when set, must occur in the body.
	Contains []byte
}

// Label returns the check's name, or a description of its assertion.
func (c *Check) Label() string {
	if c.Name != "" {
		return c.Name
	}
	switch {
	case len(c.Status) > 0:
		return fmt.Sprintf("status in %v", c.Status)
	case c.MaxLatency > 0:
		return fmt.Sprintf("latency <= %s", c.MaxLatency)
	case c.JSONPath != nil && c.Equals != nil:
		return fmt.Sprintf("%s == %q", c.JSONPath, *c.Equals)
	case c.JSONPath != nil:
		return fmt.Sprintf("%s exists", c.JSONPath)
	case c.Contains != nil:
		return fmt.Sprintf("body contains %q", c.Contains)
	}
	return "check"
}

// NeedsBody reports whether the check reads the response body, so the
// client reads bodies only when some check needs them.
func (c *Check) NeedsBody() bool { return c.JSONPath != nil || c.Contains != nil }

// Response is what checks see of one response.
type Response struct {
	Status  int
	Latency time.Duration
	Body    []byte

	doc     any
	decoded bool
	docErr  error
}

// JSON decodes the body once and caches it for every check of the response.
func (r *Response) JSON() (any, error) {
	if !r.decoded {
		r.doc, r.docErr = DecodeJSON(r.Body)
		r.decoded = true
	}
	return r.doc, r.docErr
}

// Holds reports whether the response passes the check.
func (c *Check) Holds(r *Response) bool {
	if len(c.Status) > 0 {
		found := false
		for _, s := range c.Status {
			if s == r.Status {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if c.MaxLatency > 0 && r.Latency > c.MaxLatency {
		return false
	}
	if c.Contains != nil && !bytes.Contains(r.Body, c.Contains) {
		return false
	}
	if c.JSONPath != nil {
		doc, err := r.JSON()
		if err != nil {
			return false
		}
		v, ok := c.JSONPath.Lookup(doc)
		if !ok {
			return false
		}
		if c.Equals != nil && JSONText(v) != *c.Equals {
			return false
		}
	}
	return true
}
