package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/gateway/upstream"
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
// true when a fault answered the request: in the upstream's place (an
// abort), or by shaping the upstream's answer on its way to the client
// (faults_stream.go). Only routes with faults pay for the conversion.
func (g *Gateway) applyFaults(x *exchange) bool {
	r := x.route
	hr := &http.Request{
		Method: string(x.req.method),
		URL:    &url.URL{Path: string(x.path)}, // the path the route matched
		Header: make(http.Header),
		Body:   http.NoBody,
	}
	for _, f := range x.req.fields {
		hr.Header.Add(string(f.Name), string(f.Value))
	}
	if r.faultBody && x.req.src != nil {
		hr.Body = io.NopCloser(bytes.NewReader(peekBody(&x.req, int64(r.maxBody))))
	}
	hr = hr.WithContext(x.req.ctx)
	fw := &faultWriter{header: make(http.Header)}
	d, ok := r.faults.Decide(fw, hr)
	if !ok {
		return false
	}
	ft := d.Fault()
	if ft.AbortStatus == 0 && (ft.ActsOnResponse() || len(ft.SetHeaders) > 0) && x.relayable() {
		g.faultAnswer(x, d, hr)
		return true
	}
	d.Serve(fw, hr, passThrough)
	if fw.passed {
		return false
	}
	if fw.status == 0 {
		g.reject(x, 499, "client", "client_closed", 0)
		return true
	}
	// The answer is the gateway's own rejection, so it carries the reason
	// and policy every rejection does, and the fault's Retry-After; in a
	// provider's error shape, its body is the provider's, for the
	// provider's SDKs to read.
	var wait time.Duration
	if ra, err := strconv.Atoi(fw.header.Get("Retry-After")); err == nil && ra > 0 {
		wait = time.Duration(ra) * time.Second
	}
	g.reject(x, fw.status, "fault", "fault_injected", wait)
	if pb, ok := x.req.src.(*peekedBody); ok && pb.err == io.EOF {
		// The faults read the whole body to match on it: it is counted
		// as read, and the connection can take the next request.
		x.req.limit = int64(r.maxBody)
		for {
			if _, err := x.req.Next(); err != nil {
				break
			}
		}
	}
	resp := &x.resp
	if ft.ErrorFormat != "" {
		resp.body = fw.body.Bytes()
	}
	for k := range ft.SetHeaders {
		resp.fields = setField(resp.fields, http.CanonicalHeaderKey(k), []byte(fw.header.Get(k)))
	}
	return true
}

// relayable reports whether a fault may shape the answer to x: not a
// protocol switch or a gRPC call, which have faults of their own kind.
func (x *exchange) relayable() bool {
	return !x.upgrading() && (x.route.pool == nil || x.route.pool.cfg.GRPC == nil)
}

// peekBody reads the first bytes of req's body, enough for a fault to
// match on a member of a JSON body (at most fault.MaxJSONMatchBody and
// one byte more, or the route's limit and one more), and puts them back in
// front of the rest, so the body is forwarded whole and counted as it
// goes. Memory follows the bytes received, not the length announced.
func peekBody(req *request, maxBody int64) []byte {
	if req.expect && req.continuer != nil {
		req.continuer.sendContinue()
		req.expect = false
	}
	limit := min(fault.MaxJSONMatchBody, maxBody) + 1
	var prefix []byte
	var err error
	for int64(len(prefix)) < limit {
		var p []byte
		p, err = req.src.Next()
		prefix = append(prefix, p...)
		if err != nil {
			break
		}
	}
	req.src = &peekedBody{p: prefix, err: err, rest: req.src}
	return prefix[:min(int64(len(prefix)), limit)]
}

// peekedBody gives the bytes a fault read to match on, then the rest of
// the body (or the error that ended the reading).
type peekedBody struct {
	p    []byte
	err  error
	rest upstream.BodySource
}

func (b *peekedBody) Next() ([]byte, error) {
	if len(b.p) > 0 {
		p := b.p
		b.p = nil
		return p, nil
	}
	if b.err != nil {
		return nil, b.err
	}
	return b.rest.Next()
}

var _ upstream.BodySource = (*peekedBody)(nil)
