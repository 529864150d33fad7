package fault

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/codes"

	"github.com/relia-dev/relia/internal/grpcstatus"
	"github.com/relia-dev/relia/internal/h1"
)

// HTTP/2 and gRPC in the HTTP mode. A client that opens a connection with
// HTTP/2's preface (prior knowledge, as gRPC clients do in cleartext) is
// served by Go's HTTP/2 server; each stream goes through the same fault
// filter as an HTTP/1.1 request and is forwarded to the upstream over
// HTTP/2 in cleartext, bodies streamed both ways as they come and
// trailers passed back, so every kind of gRPC call (unary, server, client
// and bidirectional streaming) goes through with its status. An http
// toxic's path matches a gRPC method ("/package.Service/Method", or
// "/package.Service/*"), its delay holds the call, and grpc_status ends it
// with a status instead of passing it on.

// h2Preface is what an HTTP/2 client sends first (RFC 9113, 3.4).
const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// sniffH2 reads the start of a new connection into rd and, when it is
// HTTP/2's preface, serves the connection as HTTP/2 and reports true. An
// HTTP/1.1 connection is left to the caller with what was read still in
// rd.
func (hp *httpProxy) sniffH2(nc net.Conn, rd *h1.Reader) bool {
	nc.SetReadDeadline(time.Now().Add(httpHeadTimeout))
	for {
		got := rd.Buffered()
		n := min(len(got), len(h2Preface))
		if string(got[:n]) != h2Preface[:n] {
			return false // HTTP/1.1, or garbage the codec refuses
		}
		if n == len(h2Preface) {
			break
		}
		if err := rd.Fill(); err != nil {
			return false
		}
	}
	nc.SetReadDeadline(time.Time{})
	h := hp.h2Handler()
	conn := &replayConn{Conn: nc, r: io.MultiReader(bytes.NewReader(bytes.Clone(rd.Buffered())), nc)}
	(&http2.Server{}).ServeConn(conn, &http2.ServeConnOpts{Handler: h, BaseConfig: &http.Server{}})
	return true
}

// replayConn reads what was already read from a connection before the
// rest of it.
type replayConn struct {
	net.Conn
	r io.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// h2Forwarder forwards HTTP/2 streams to a proxy's upstream.
type h2Forwarder struct {
	upstream string
	tr       *http2.Transport
}

// h2Handler returns the handler of the proxy's HTTP/2 streams: its fault
// filter in front of the HTTP/2 forwarder, made on first use.
func (hp *httpProxy) h2Handler() http.Handler {
	hp.h2Once.Do(func() {
		up := hp.p.upstream
		fw := &h2Forwarder{upstream: up, tr: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, _ string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, up)
			},
		}}
		hp.h2fw = fw
		hp.h2 = hp.p.filter.Wrap(fw)
	})
	return hp.h2
}

// closeH2 closes the forwarder's kept-alive upstream connections.
func (hp *httpProxy) closeH2() {
	if hp.h2fw != nil {
		hp.h2fw.tr.CloseIdleConnections()
	}
}

// ServeHTTP forwards one stream and passes the answer back, flushing
// each piece of the body as it comes and the trailers at the end.
func (f *h2Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	out := &http.Request{
		Method: r.Method, URL: &url.URL{Scheme: "http", Host: f.upstream, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host: r.Host, Header: r.Header.Clone(), Body: r.Body, ContentLength: r.ContentLength, Trailer: r.Trailer,
	}
	if r.ContentLength == 0 && r.Body != http.NoBody {
		out.ContentLength = -1 // a stream whose end is not yet known
	}
	out = out.WithContext(r.Context())
	resp, err := f.tr.RoundTrip(out)
	if err != nil {
		if isGRPC(r) {
			grpcstatus.WriteTrailersOnly(w, codes.Unavailable, "fault proxy: upstream unreachable: "+err.Error(), nil)
			return
		}
		writeJSON(w, http.StatusBadGateway, map[string]string{"reason": "upstream_unreachable", "error": err.Error()})
		return
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			panic(http.ErrAbortHandler) // the client must not take a cut stream for a whole
		}
	}
	for k, vs := range resp.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
}

// isGRPC reports whether a request is a gRPC call.
func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// validateGRPC checks an HTTPFault's gRPC fields.
func (f *HTTPFault) validateGRPC() error {
	if f.GRPCStatus == "" {
		if f.GRPCMessage != "" || f.GRPCPushback != nil {
			return errors.New("grpc_message and grpc_retry_pushback_ms need grpc_status")
		}
		return nil
	}
	var errs []error
	c, ok := grpcstatus.Parse(f.GRPCStatus)
	switch {
	case !ok:
		errs = append(errs, fmt.Errorf("grpc_status %q: want a gRPC status code by name (UNAVAILABLE) or number (0 to 16)", f.GRPCStatus))
	case c == codes.OK:
		errs = append(errs, errors.New("grpc_status OK is no fault"))
	}
	if f.AbortStatus != 0 {
		errs = append(errs, errors.New("give grpc_status or abort_status, not both"))
	}
	if strings.ContainsAny(f.GRPCMessage, "\r\n\x00") {
		errs = append(errs, errors.New("grpc_message may not hold line breaks or NUL"))
	}
	return errors.Join(errs...)
}

// abortGRPC ends a call with the fault's gRPC status.
func (f *HTTPFault) abortGRPC(w http.ResponseWriter) {
	c, _ := grpcstatus.Parse(f.GRPCStatus) // checked by validateGRPC
	msg := f.GRPCMessage
	if msg == "" {
		msg = "fault injected"
	}
	grpcstatus.WriteTrailersOnly(w, c, msg, f.GRPCPushback)
}

// h2State is the HTTP/2 part of an httpProxy.
type h2State struct {
	h2Once sync.Once
	h2     http.Handler
	h2fw   *h2Forwarder
}
