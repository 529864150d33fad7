package h1

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

// The benchmark's messages: wrk's request and the nginx backend's answer
// (bench/gateway).
var (
	benchRequest  = []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
	benchResponse = []byte("HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 23 Nov 2026 10:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n")
	benchID       = []byte("0123456789abcdef0123456789abcdef")
)

// BenchmarkProxyHeads is what a proxy does to one exchange's heads: parse
// the request, write it upstream without hop-by-hop fields and with a
// request id and forwarding fields, parse the response and write it back
// without hop-by-hop fields and with the request id. Compare
// BenchmarkProxyHeadsFasthttp, the same with fasthttp's types, which the
// gateway's pipeline uses.
func BenchmarkProxyHeads(b *testing.B) {
	var req Request
	var resp Response
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		n, err := ParseRequest(benchRequest, DefaultLimits, &req)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out[:0], req.Method...)
		out = append(out, ' ')
		out = append(out, req.Target...)
		out = append(out, " HTTP/1.1\r\n"...)
		out = req.AppendFields(out, req.IsHopByHop)
		out = append(out, "X-Request-Id: "...)
		out = append(out, benchID...)
		out = append(out, "\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"...)
		out = append(out, benchRequest[n:]...)

		n, err = ParseResponse(benchResponse, DefaultLimits, false, &resp)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out[:0], benchResponse[:bytes.IndexByte(benchResponse, '\r')+2]...)
		out = resp.AppendFields(out, resp.IsHopByHop)
		out = append(out, "X-Request-Id: "...)
		out = append(out, benchID...)
		out = append(out, "\r\n\r\n"...)
		out = append(out, benchResponse[n:]...)
	}
}

var benchHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

func BenchmarkProxyHeadsFasthttp(b *testing.B) {
	var req fasthttp.Request
	var resp fasthttp.Response
	r := bytes.NewReader(nil)
	br := bufio.NewReader(r)
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(benchRequest)
		br.Reset(r)
		req.Reset()
		if err := req.Read(br); err != nil {
			b.Fatal(err)
		}
		for _, name := range benchHopHeaders {
			req.Header.Del(name)
		}
		req.Header.SetBytesV("X-Request-Id", benchID)
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		req.Header.Set("X-Forwarded-Proto", "http")
		out = req.Header.AppendBytes(out[:0])
		out = append(out, req.Body()...)

		r.Reset(benchResponse)
		br.Reset(r)
		resp.Reset()
		if err := resp.Read(br); err != nil {
			b.Fatal(err)
		}
		for _, name := range benchHopHeaders {
			resp.Header.Del(name)
		}
		resp.Header.SetBytesV("X-Request-Id", benchID)
		out = resp.Header.AppendBytes(out[:0])
		out = append(out, resp.Body()...)
	}
}
