package gateway

import (
	"bufio"
	"io"
	"math"
	"net"
	"net/http"

	"github.com/valyala/fasthttp"
)

// stdServer builds the net/http server of a TLS or h2c listener. Its
// requests are converted into fasthttp request contexts and served by the
// same handler as the HTTP/1.1 engine's, so routes, policies, logs and
// metrics are one code path whatever the protocol.
func (g *Gateway) stdServer(l Listener, srv Server, maxBody int) (*http.Server, error) {
	hs := &http.Server{
		Handler:           g.bridge(maxBody),
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		IdleTimeout:       srv.IdleTimeout,
		WriteTimeout:      srv.WriteTimeout,
		MaxHeaderBytes:    int(srv.MaxHeaderBytes),
	}
	if l.H2C {
		hs.Protocols = new(http.Protocols)
		hs.Protocols.SetHTTP1(true)
		hs.Protocols.SetUnencryptedHTTP2(true)
	}
	return hs, nil
}

// tlsKey marks a bridged request that arrived over TLS.
type tlsKey struct{}

// bridge serves a net/http request through the gateway's handler.
func (g *Gateway) bridge(maxBody int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := fasthttp.AcquireRequest()
		defer fasthttp.ReleaseRequest(req)
		req.Header.SetMethod(r.Method)
		req.SetRequestURI(r.URL.RequestURI())
		req.Header.SetHost(r.Host)
		for k, vs := range r.Header {
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
		if r.Body != nil {
			body, err := io.ReadAll(io.LimitReader(r.Body, int64(maxBody)+1))
			if err != nil {
				http.Error(w, `{"reason":"bad_request_body","policy":"server"}`, http.StatusBadRequest)
				return
			}
			if len(body) > maxBody {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				io.WriteString(w, `{"reason":"body_too_large","policy":"server"}`+"\n")
				return
			}
			req.SetBodyRaw(body)
		}
		addr, _ := net.ResolveTCPAddr("tcp", r.RemoteAddr)
		var ctx fasthttp.RequestCtx
		ctx.Init(req, addr, nil)
		if r.TLS != nil {
			ctx.SetUserValue(tlsKey{}, true)
		}
		if hj, ok := w.(http.Hijacker); ok && r.ProtoMajor == 1 {
			ctx.SetUserValue(hijackKey{}, hj)
		}
		g.serve(&ctx)
		if hj := ctx.UserValue(hijackedKey{}); hj != nil {
			return // an Upgrade took the connection
		}
		resp := &ctx.Response
		h := w.Header()
		resp.Header.VisitAll(func(k, v []byte) {
			switch string(k) {
			case "Connection", "Transfer-Encoding", "Content-Length", "Date":
				return
			}
			h.Add(string(k), string(v))
		})
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = nil // no sniffing: the target sent none
		}
		if cl := resp.Header.ContentLength(); cl >= 0 && resp.BodyStream() == nil {
			h.Set("Content-Length", itoa(cl))
		}
		w.WriteHeader(resp.StatusCode())
		if r.Method == http.MethodHead {
			resp.CloseBodyStream()
			return
		}
		if bs := resp.BodyStream(); bs != nil {
			f, _ := w.(http.Flusher)
			passOn(bs, func(p []byte) error {
				if _, err := w.Write(p); err != nil {
					return err
				}
				if f != nil {
					f.Flush()
				}
				return nil
			})
			resp.CloseBodyStream()
			return
		}
		w.Write(resp.Body())
	})
}

// passOn copies src to write one read at a time, so that what a target
// streams (server-sent events) reaches the client as it comes. It stops at
// the end of src or the first error on either side.
func passOn(src io.Reader, write func([]byte) error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && write(buf[:n]) != nil {
			return
		}
		if err != nil {
			return
		}
	}
}

// hijackKey holds the bridged request's http.Hijacker; hijackedKey marks
// that the upgrade path took the connection.
type (
	hijackKey   struct{}
	hijackedKey struct{}
)

// hijackBridged takes the connection of a bridged HTTP/1.1 request for an
// Upgrade, as RequestCtx.Hijack does on the fast engine; ok is false when
// ctx is not a bridged request.
func hijackBridged(ctx *fasthttp.RequestCtx, handler func(net.Conn)) (ok bool) {
	hj, _ := ctx.UserValue(hijackKey{}).(http.Hijacker)
	if hj == nil {
		return false
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return true
	}
	ctx.SetUserValue(hijackedKey{}, true)
	var c net.Conn = conn
	if rw.Reader.Buffered() > 0 {
		c = &bufferedConn{Conn: conn, r: rw.Reader}
	}
	go handler(c) // ends when the spliced connections close
	return true
}

// bufferedConn reads what net/http had already buffered before the
// connection was hijacked.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func itoa(n int) string {
	if n < 0 || n > math.MaxInt32 {
		return "0"
	}
	var b [12]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}
