package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/relia-dev/relia/internal/h1"
	"github.com/relia-dev/relia/resilience"
	"github.com/valyala/fasthttp"
)

// features does, per request, what the benchmark's gateway config asks
// of relia's gateway, the way an event-loop engine would: a request id,
// X-Forwarded-For and -Proto added upstream, a breaker permit and a retry
// budget deposit, the inbound and upstream duration histograms and a JSON
// access-log line written from a 1 MiB buffer. It is the floor's estimate
// of the gateway's features on an event loop, not the gateway.
type features struct {
	breaker  *resilience.Breaker
	budget   *resilience.RetryBudget
	inbound  prometheus.Observer
	upstream prometheus.Observer
	requests prometheus.Counter
	log      *os.File
	logBuf   []byte
	out      []byte
	inflight map[int]*exchange

	// parsed: every message goes through fasthttp's parser and back out
	// through its writer, with the gateway's header edits (hop-by-hop
	// headers removed, request id on both ways), as the gateway's pipeline
	// would do it on an event loop.
	parsed bool
	// h1: the same, with relia's in-place parser (internal/h1) instead of
	// fasthttp's types.
	h1     bool
	h1Req  h1.Request
	h1Resp h1.Response
	reader *bytes.Reader
	br     *bufio.Reader
	req    fasthttp.Request
	resp   fasthttp.Response
}

// hopHeaders is the gateway's list (gateway/proxy.go).
var hopHeaders = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

// exchange is what a request carries until its response.
type exchange struct {
	start  time.Time
	permit resilience.BreakerPermit
	id     [32]byte
	method []byte
	path   []byte
}

func newFeatures(accessLog string, parsed, withH1 bool) (*features, error) {
	b, err := resilience.NewBreaker(resilience.BreakerSettings{Name: "nginx"})
	if err != nil {
		return nil, err
	}
	budget, err := resilience.NewRetryBudget(resilience.RetryBudgetSettings{Ratio: 0.2})
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(accessLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	server := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_server_request_duration_seconds", Buckets: prometheus.DefBuckets}, []string{"http_route", "http_request_method", "http_response_status_code"})
	client := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "http_client_request_duration_seconds", Buckets: prometheus.DefBuckets}, []string{"server_address", "http_request_method", "http_response_status_code"})
	total := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relia_gateway_requests_total"}, []string{"route"})
	reg.MustRegister(server, client, total)
	return &features{
		breaker: b, budget: budget, log: f, logBuf: make([]byte, 0, 1<<20),
		inbound:  server.WithLabelValues("all", "GET", "200"),
		upstream: client.WithLabelValues("nginx", "GET", "200"),
		requests: total.WithLabelValues("all"),
		inflight: map[int]*exchange{},
		parsed:   parsed,
		h1:       withH1,
		reader:   bytes.NewReader(nil),
		br:       bufio.NewReaderSize(nil, 4096),
	}, nil
}

func (f *features) message(fd int, request bool, msg []byte) []byte {
	if request {
		return f.request(fd, msg)
	}
	return f.response(fd, msg)
}

func (f *features) request(fd int, msg []byte) []byte {
	x := f.inflight[fd]
	if x == nil {
		x = &exchange{}
		f.inflight[fd] = x
	}
	x.start = time.Now()
	permit, err := f.breaker.Allow()
	if err != nil {
		permit = resilience.BreakerPermit{}
	}
	x.permit = permit
	f.budget.Deposit()
	var raw [16]byte
	rand.Read(raw[:])
	hex.Encode(x.id[:], raw[:])
	line := msg[:bytes.IndexByte(msg, '\r')]
	sp := bytes.IndexByte(line, ' ')
	x.method = append(x.method[:0], line[:sp]...)
	rest := line[sp+1:]
	x.path = append(x.path[:0], rest[:bytes.IndexByte(rest, ' ')]...)
	if f.h1 {
		r := &f.h1Req
		n, err := h1.ParseRequest(msg, h1.DefaultLimits, r)
		if err != nil {
			panic(err) // the benchmark sends only well-formed GETs
		}
		f.out = append(f.out[:0], r.Method...)
		f.out = append(f.out, ' ')
		f.out = append(f.out, r.Target...)
		f.out = append(f.out, " HTTP/1.1\r\n"...)
		f.out = r.AppendFields(f.out, r.IsHopByHop)
		f.out = append(f.out, "X-Request-ID: "...)
		f.out = append(f.out, x.id[:]...)
		f.out = append(f.out, "\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"...)
		return append(f.out, msg[n:]...)
	}
	if f.parsed {
		f.load(msg)
		if err := f.req.Read(f.br); err != nil {
			panic(err) // the benchmark sends only well-formed GETs
		}
		h := &f.req.Header
		for _, name := range hopHeaders {
			h.Del(name)
		}
		h.SetBytesV("X-Request-Id", x.id[:])
		h.Set("X-Forwarded-For", "127.0.0.1")
		h.Set("X-Forwarded-Proto", "http")
		f.out = h.AppendBytes(f.out[:0])
		return append(f.out, f.req.Body()...)
	}
	// The head's last CRLF moves behind the added headers.
	head := msg[:len(msg)-2]
	f.out = append(f.out[:0], head...)
	f.out = append(f.out, "X-Request-ID: "...)
	f.out = append(f.out, x.id[:]...)
	f.out = append(f.out, "\r\nX-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n\r\n"...)
	return f.out
}

func (f *features) response(fd int, msg []byte) []byte {
	x := f.inflight[fd]
	if x == nil {
		return msg
	}
	lat := time.Since(x.start)
	status := 0
	if len(msg) > 12 {
		status, _ = strconv.Atoi(string(msg[9:12]))
	}
	var outcome error
	if status >= 500 {
		outcome = errors.New("upstream 5xx")
	}
	x.permit.Done(outcome)
	f.upstream.Observe(lat.Seconds())
	f.inbound.Observe(lat.Seconds())
	f.requests.Inc()
	b := f.logBuf
	b = append(b, `{"time":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","request_id":"`...)
	b = append(b, x.id[:]...)
	b = append(b, `","route":"all","upstream":"nginx","method":"`...)
	b = append(b, x.method...)
	b = append(b, `","path":"`...)
	b = append(b, x.path...)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"attempts":1,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(lat.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, "}\n"...)
	if len(b) > cap(b)-512 {
		f.log.Write(b)
		b = b[:0]
	}
	f.logBuf = b
	if f.h1 {
		r := &f.h1Resp
		n, err := h1.ParseResponse(msg, h1.DefaultLimits, false, r)
		if err != nil {
			panic(err)
		}
		// Connection: close stays (see below); the rest of the hop-by-hop
		// fields go.
		f.out = append(f.out[:0], msg[:bytes.IndexByte(msg, '\r')+2]...)
		f.out = r.AppendFields(f.out, func(name []byte) bool {
			return !bytes.EqualFold(name, []byte("Connection")) && r.IsHopByHop(name)
		})
		f.out = append(f.out, "X-Request-ID: "...)
		f.out = append(f.out, x.id[:]...)
		f.out = append(f.out, "\r\n\r\n"...)
		return append(f.out, msg[n:]...)
	}
	if f.parsed {
		f.load(msg)
		if err := f.resp.Read(f.br); err != nil {
			panic(err)
		}
		// Connection: close stays: the floor pairs each client with an
		// upstream connection, so the backend closing one (nginx does
		// after 1,000 requests) closes the other.
		h := &f.resp.Header
		for _, name := range hopHeaders {
			h.Del(name)
		}
		h.SetBytesV("X-Request-Id", x.id[:])
		f.out = h.AppendBytes(f.out[:0])
		return append(f.out, f.resp.Body()...)
	}
	return msg
}

// load points the parser's reader at msg.
func (f *features) load(msg []byte) {
	f.reader.Reset(msg)
	f.br.Reset(f.reader)
}
