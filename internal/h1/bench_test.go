package h1

import (
	"bytes"
	"testing"
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
// without hop-by-hop fields and with the request id, as the gateway does.
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
