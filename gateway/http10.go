package gateway

import (
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// An HTTP/1.0 client cannot read the chunked coding, and chunked is how
// the server writes a body whose length is not known when the response
// starts: one streamed on from a target that sent it chunked or ended it
// by closing. Such a body goes to an HTTP/1.0 client the way HTTP/1.0
// frames it: no length, and the connection closed at its end, as nginx
// does (RFC 9112, section 6.3, item 8).

// closeDelimitForHTTP10 arranges for ctx's response to be written that
// way when the client speaks HTTP/1.0 and the body is a stream of unknown
// length; otherwise it leaves the response to the server. The server's
// write timeout bounds writing the whole response, as it does for every
// other response.
func (g *Gateway) closeDelimitForHTTP10(ctx *fasthttp.RequestCtx, srv *Server) {
	resp := &ctx.Response
	if ctx.Request.Header.IsHTTP11() || resp.BodyStream() == nil || resp.Header.ContentLength() >= 0 {
		return
	}
	resp.Header.SetContentLength(-2) // no length; also marks the connection closing
	resp.Header.Del(fasthttp.HeaderTransferEncoding)
	writeTimeout := srv.withDefaults().WriteTimeout
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		// The server closes c when this returns. Shutdown past its
		// deadline ends it sooner (the write deadline is set first, so
		// that ending c is not undone), and the read from the target the
		// stream may be waiting in (openStreams).
		c.SetWriteDeadline(time.Now().Add(writeTimeout))
		g.taken.serve(func() { endConn(c) }, func() {
			defer resp.CloseBodyStream()
			if _, err := c.Write(resp.Header.Header()); err != nil {
				return
			}
			passOn(resp.BodyStream(), func(p []byte) error {
				_, err := c.Write(p)
				return err
			})
		})
	})
}
