package fault

import (
	"encoding/json"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// copyBuffers lends the reverse proxies their body-copy buffers, which
// they would otherwise allocate, 32 KiB at a time, for every response.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.pool.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.pool.Put(&p) }

// newHTTPServer returns the HTTP-mode server of p: its fault filter in front
// of a reverse proxy to the upstream.
func (p *proxyEntry) newHTTPServer() *http.Server {
	target := &url.URL{Scheme: "http", Host: p.upstream}
	tr := &http.Transport{
		DialContext:         p.srv.dialer.DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// Pass Accept-Encoding as the client sent it: the transport would
		// otherwise ask for gzip and unpack it, so the upstream would see
		// a request the client never sent.
		DisableCompression: true,
	}
	// Stopping the proxy closes its kept-alive upstream connections too.
	p.httpTransport = tr
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
			r.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: copyBuffers,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(map[string]string{"reason": "upstream_unreachable", "error": err.Error()})
		},
	}
	return &http.Server{Handler: p.filter.Wrap(rp), ReadHeaderTimeout: 30 * time.Second}
}
