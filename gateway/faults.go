package gateway

import (
	"bytes"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// faultWriter captures what fault.HTTPFilter answers in place of the
// upstream, and whether it let the request pass.
type faultWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	passed bool
}

func (w *faultWriter) Header() http.Header         { return w.header }
func (w *faultWriter) WriteHeader(status int)      { w.status = status }
func (w *faultWriter) Write(p []byte) (int, error) { return w.body.Write(p) }

// passThrough is the handler behind a route's fault filter: reaching it
// means no fault stopped the request.
var passThrough = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	if fw, ok := w.(*faultWriter); ok {
		fw.passed = true
	}
})

// applyFaults runs the route's fault filter (fault.HTTPFilter, the same
// one the fault proxy uses) on a net/http view of the request. It reports
// true when a fault answered the request. Only routes with faults pay for
// the conversion.
func (g *Gateway) applyFaults(x *exchange) bool {
	hr := &http.Request{
		Method: string(x.req.method),
		URL:    &url.URL{Path: string(x.path)}, // the path the route matched
		Header: make(http.Header),
	}
	for _, f := range x.req.fields {
		hr.Header.Add(string(f.Name), string(f.Value))
	}
	hr = hr.WithContext(x.req.ctx)
	fw := &faultWriter{header: make(http.Header)}
	x.route.faultHandler.ServeHTTP(fw, hr)
	if fw.passed {
		return false
	}
	if fw.status == 0 {
		g.reject(x, 499, "client", "client_closed", 0)
		return true
	}
	// The answer is the gateway's own rejection, so it carries the reason
	// and policy every rejection does, and the fault's Retry-After.
	var wait time.Duration
	if ra, err := strconv.Atoi(fw.header.Get("Retry-After")); err == nil && ra > 0 {
		wait = time.Duration(ra) * time.Second
	}
	g.reject(x, fw.status, "fault", "fault_injected", wait)
	return true
}
