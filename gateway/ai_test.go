package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/net/http2"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
)

// aiSpec is a gateway whose route llm is served by the AI gateway
// "assist" of the same file: gpt-4o-mini on provider a, then b.
const aiSpec = `%s  routes:
    - name: llm
      match: {path: {prefix: /v1}}
      ai: assist
---
kind: AIGateway
version: relia/v1
metadata: {name: assist}
spec:
  providers:
    - {name: a, type: openai, url: "%s/v1", keys: [{value: sk-a}]}
    - {name: b, type: openai, url: "%s/v1", keys: [{value: sk-b}]}
  routes:
    - model: gpt-4o-mini
      targets: [{provider: a}]
      fallbacks: [gpt-4o]
      timeouts: {firstToken: 1s, idle: 2s}
    - model: gpt-4o
      targets: [{provider: b}]
%s`

func startMockProvider(t *testing.T, o mock.Options) (*mock.Server, string) {
	t.Helper()
	sim, err := mock.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// callList collects the gateway's call records.
type callList struct {
	mu   sync.Mutex
	list []callstore.Record
}

func (c *callList) Record(r *callstore.Record) {
	c.mu.Lock()
	rec := *r
	rec.Steps = append([]callstore.Step(nil), r.Steps...)
	c.list = append(c.list, rec)
	c.mu.Unlock()
}

func (c *callList) all() []callstore.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]callstore.Record(nil), c.list...)
}

const aiHello = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`

// TestAIRouteHTTP1: the AI gateway answers on the gateway's listener,
// framed by the gateway's codec: a whole answer with its Content-Length,
// a stream as chunks flushed as events come (the client reads the first
// tokens while the provider stalls), a stall ended by an error event
// within the idle timeout, all on one kept-alive connection; the call
// records, access log and GenAI metrics name model, provider and tokens.
func TestAIRouteHTTP1(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	_, a := startMockProvider(t, mock.Options{Clock: fc, Seed: 1, OutputTokens: 5,
		Faults: []mock.Fault{{Kind: mock.FaultStall, AfterTokens: 2, Model: "gpt-4o-mini-stall"}}})
	_, b := startMockProvider(t, mock.Options{Clock: fc, Seed: 1})
	var calls callList
	var access syncBuffer
	reg := prometheus.NewRegistry()
	// A second route whose provider model stalls.
	extra := "    - model: gpt-4.1-nano\n      targets: [{provider: a, model: gpt-4o-mini-stall}]\n      timeouts: {firstToken: 1s, idle: 2s}\n"
	_, base := startGateway(t, fmt.Sprintf(aiSpec, "", a, b, extra), Options{Clock: fc, Calls: &calls, AccessLog: &access, Registry: reg})

	nc, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	br := bufio.NewReader(nc)

	// A whole answer: framed by its length.
	fmt.Fprintf(nc, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(aiHello), aiHello)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) > 0 || !bytes.Contains(body, []byte(`"chat.completion"`)) {
		t.Fatalf("whole answer: %d length %d %v %s", resp.StatusCode, resp.ContentLength, resp.TransferEncoding, body)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("the answer has no X-Request-Id")
	}

	// A stream, its request body chunked: the first tokens arrive while
	// the provider stalls, so each event was flushed as it came.
	stream := strings.Replace(aiHello, `"gpt-4o-mini"`, `"gpt-4.1-nano","stream":true`, 1)
	fmt.Fprintf(nc, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(stream), stream)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(resp.TransferEncoding) == 0 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v %v", resp.StatusCode, resp.TransferEncoding, resp.Header)
	}
	events := bufio.NewReader(resp.Body)
	tokens := 0
	for tokens < 2 {
		line, err := events.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d tokens: %v", tokens, err)
		}
		if strings.Contains(line, `"content":"`) {
			tokens++
		}
	}
	fc.BlockUntil(1) // the stream's timer: its idle timeout, and the call's total timeout
	fc.Advance(2 * time.Second)
	rest, err := io.ReadAll(events)
	if err != nil {
		t.Fatalf("the stream's end: %v", err)
	}
	if !strings.Contains(string(rest), "stream_interrupted") {
		t.Errorf("the stalled stream ended without its error event: %s", rest)
	}

	// The connection stays open for the next request.
	fmt.Fprintf(nc, "GET /v1/models HTTP/1.1\r\nHost: gw\r\n\r\n")
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"gpt-4o-mini"`)) {
		t.Errorf("models: %d %s", resp.StatusCode, body)
	}

	recs := waitCalls(t, &calls, 3)
	whole, stalled := recs[0], recs[1]
	if whole.Model != "gpt-4o-mini" || whole.Provider != "a" || whole.InputTokens == 0 || whole.OutputTokens != 5 || whole.Cost <= 0 || whole.Route != "llm" || whole.Outcome != "ok" {
		t.Errorf("whole answer's record %+v", whole)
	}
	if len(whole.Steps) != 1 || whole.Steps[0].Target != "a/gpt-4o-mini" || whole.Steps[0].Outcome != "ok" {
		t.Errorf("whole answer's steps %+v", whole.Steps)
	}
	if stalled.Model != "gpt-4.1-nano" || stalled.Outcome != "failed_mid_stream" || stalled.Reason != "timeout" || !stalled.Failed() {
		t.Errorf("stalled stream's record %+v", stalled)
	}
	for range 200 {
		if strings.Count(access.String(), "\n") >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if log := access.String(); !strings.Contains(log, `"model":"gpt-4o-mini","provider":"a"`) || !strings.Contains(log, `"ai_path":["a/gpt-4o-mini:ok"]`) {
		t.Errorf("access log:\n%s", log)
	}
	mfs, _ := reg.Gather()
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "gen_ai_client_token_usage") || !strings.Contains(got, "http_server_request_duration_seconds") {
		t.Errorf("metrics: %s", got)
	}
	// The stalled stream's client got a 200, then an error event: the
	// gateway's request metric counts it as failed mid-stream.
	if got := serverCounts(mfs, "llm"); got["200 failed_mid_stream"] != 1 || got["200 "] != 2 {
		t.Errorf("http_server_request_duration_seconds counts by status and error type: %v, want 200 failed_mid_stream: 1 and 200 (no error): 2", got)
	}
}

// serverCounts returns the request counts of a route's
// http_server_request_duration_seconds, by "status error_type".
func serverCounts(mfs []*dto.MetricFamily, route string) map[string]uint64 {
	got := map[string]uint64{}
	for _, mf := range mfs {
		if mf.GetName() != "http_server_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["http_route"] == route {
				got[l["http_response_status_code"]+" "+l["error_type"]] += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return got
}

func waitCalls(t *testing.T, c *callList, n int) []callstore.Record {
	t.Helper()
	for range 500 {
		if recs := c.all(); len(recs) >= n {
			return recs
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%d call records, want %d", len(c.all()), n)
	return nil
}

// TestAIRouteOpenAISDK: the official OpenAI client, streaming and not,
// through relia gateway: the gateway's API keys name the AI gateway's
// tenant, which decides the models it may call.
func TestAIRouteOpenAISDK(t *testing.T) {
	t.Parallel()
	_, a := startMockProvider(t, mock.Options{Seed: 2, OutputTokens: 4})
	_, b := startMockProvider(t, mock.Options{Seed: 2})
	keys := writeFile(t, "keys.yaml", fmt.Sprintf("kind: APIKeys\nversion: relia/v1\nspec:\n  keys:\n    - {id: acme-app, tenant: acme, routes: ['*'], sha256: %s}\n    - {id: narrow-app, tenant: narrow, routes: ['*'], sha256: %s}\n",
		auth.HashKey("sk-gw-acme"), auth.HashKey("sk-gw-narrow")))
	tenants := "  tenants:\n    - {name: acme, quotas: [{requestsPerMinute: 1000}]}\n    - {name: narrow, models: [gpt-4o]}\n"
	var calls callList
	g, base := startGateway(t, fmt.Sprintf(aiSpec, "  auth: {keysFile: "+keys+"}\n", a, b, tenants), Options{Calls: &calls})
	ctx := context.Background()
	client := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("sk-gw-acme"), option.WithMaxRetries(0))
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello there")}}

	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Choices) != 1 || resp.Choices[0].Message.Content == "" || resp.Usage.CompletionTokens != 4 {
		t.Errorf("answer %+v", resp)
	}

	s := client.Chat.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	for s.Next() {
		if c := s.Current(); len(c.Choices) > 0 {
			text.WriteString(c.Choices[0].Delta.Content)
		}
	}
	if err := s.Err(); err != nil || text.Len() == 0 {
		t.Errorf("stream: %q %v", text.String(), err)
	}

	// The narrow tenant may call gpt-4o only.
	narrow := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("sk-gw-narrow"), option.WithMaxRetries(0))
	_, err = narrow.Chat.Completions.New(ctx, params)
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
		t.Errorf("a tenant refused the model: %v", err)
	}
	// No key: the gateway refuses before the AI gateway sees the call.
	anon := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey(""), option.WithMaxRetries(0))
	if _, err = anon.Chat.Completions.New(ctx, params); !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Errorf("a call without a key: %v", err)
	}
	_, usage, _ := get(t, "GET", "http://"+g.AdminAddr()+"/ai/usage", nil)
	if !strings.Contains(usage, `"acme"`) {
		t.Errorf("admin /ai/usage: %s", usage)
	}
	recs := waitCalls(t, &calls, 4)
	// A stream's record is written once its answer ended, which on a busy
	// machine can be after the later calls' records: the calls' order is
	// their start times'.
	slices.SortFunc(recs, func(a, b callstore.Record) int { return a.Time.Compare(b.Time) })
	if recs[0].Tenant != "acme" || recs[0].KeyID != "acme-app" || recs[0].Model != "gpt-4o-mini" || recs[1].OutputTokens == 0 || recs[2].Tenant != "narrow" || recs[2].Status != 403 {
		t.Errorf("records %+v", recs)
	}
}

// TestAIRouteHTTP2: an HTTP/2 client (prior knowledge) gets the stream
// event by event from the same route.
func TestAIRouteHTTP2(t *testing.T) {
	t.Parallel()
	_, a := startMockProvider(t, mock.Options{Seed: 3, OutputTokens: 3})
	_, b := startMockProvider(t, mock.Options{Seed: 3})
	listeners := "  listeners: [{name: main, address: 127.0.0.1:0, h2c: true}]\n"
	_, base := startGateway(t, fmt.Sprintf(aiSpec, listeners, a, b, ""), Options{})
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	client := openai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithHTTPClient(&http.Client{Transport: tr}), option.WithMaxRetries(0))
	s := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	n := 0
	for s.Next() {
		if c := s.Current(); len(c.Choices) > 0 && c.Choices[0].Delta.Content != "" {
			n++
		}
	}
	if err := s.Err(); err != nil || n != 3 {
		t.Errorf("%d tokens over HTTP/2: %v", n, err)
	}
}

// TestAIRouteReloadKeepsState: a provider resting out its Retry-After
// stays resting across a reload of the same AI gateway; a fresh service
// per reload would call it again at once.
func TestAIRouteReloadKeepsState(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	simA, a := startMockProvider(t, mock.Options{Clock: fc, Faults: []mock.Fault{{Kind: mock.FaultStatus, Status: 429, RetryAfter: 10 * time.Second}}})
	simB, b := startMockProvider(t, mock.Options{Clock: fc})
	doc := fmt.Sprintf(aiSpec, "", a, b, "")
	g, base := startGateway(t, doc, Options{Clock: fc})
	post := func() int {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(aiHello))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != 200 || simA.Count() != 1 || simB.Count() != 1 {
		t.Fatalf("first call %d: a %d calls, b %d", code, simA.Count(), simB.Count())
	}
	full := "kind: Gateway\nversion: relia/v1\nspec:\n  listeners:\n    - name: main\n      address: 127.0.0.1:0\n  admin:\n    address: 127.0.0.1:0\n" + doc
	cfg, err := Parse("test.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	fc.Advance(5 * time.Second)
	if code := post(); code != 200 || simA.Count() != 1 || simB.Count() != 2 {
		t.Errorf("after the reload, within the Retry-After: %d, a %d calls, b %d", code, simA.Count(), simB.Count())
	}
	simA.SetFaults(nil)
	fc.Advance(6 * time.Second)
	if code := post(); code != 200 || simA.Count() != 2 {
		t.Errorf("after the Retry-After: %d, a %d calls", code, simA.Count())
	}
}

// TestAIRouteConfigErrors: an ai route names a document of its file and
// takes no pool policies.
func TestAIRouteConfigErrors(t *testing.T) {
	t.Parallel()
	head := "kind: Gateway\nversion: relia/v1\nspec:\n  listeners: [{address: 127.0.0.1:0}]\n  upstreams: [{name: u, targets: [{address: 127.0.0.1:1}]}]\n  routes:\n"
	ai := "---\nkind: AIGateway\nversion: relia/v1\nmetadata: {name: assist}\nspec:\n  providers: [{name: a, type: openai, url: http://127.0.0.1:1/v1, keys: [{value: k}]}]\n  routes: [{model: gpt-4o-mini, targets: [{provider: a}]}]\n"
	for _, tc := range []struct{ doc, want string }{
		{head + "    - {name: r, ai: other}\n" + ai, `test.yaml:7:21: spec.routes[0].ai: no AIGateway document named "other" (the file has "assist")`},
		{head + "    - {name: r, ai: assist}\n", "no document of kind AIGateway"},
		{head + "    - {name: r, ai: assist, upstream: u, retry: {}}\n" + ai, "spec.routes[0].ai: a route has an upstream or an ai, not both"},
		{head + "    - {name: r, ai: assist, retry: {}}\n" + ai, "spec.routes[0].retry: not on an ai route"},
	} {
		_, err := Parse("test.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.doc, err, tc.want)
		}
	}
}

// TestAIRouteEdgeRefuses: what the gateway's codec refuses never reaches
// the AI gateway: a request framed two ways, a body announced past the
// route's limit.
func TestAIRouteEdgeRefuses(t *testing.T) {
	t.Parallel()
	simA, a := startMockProvider(t, mock.Options{Seed: 4})
	_, b := startMockProvider(t, mock.Options{Seed: 4})
	_, base := startGateway(t, fmt.Sprintf(strings.Replace(aiSpec, "ai: assist\n", "ai: assist\n      maxBodySize: 1KiB\n", 1), "", a, b, ""), Options{})
	for _, tc := range []struct {
		raw    string
		status int
	}{
		{"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 5000\r\n\r\n{", 413},
		{"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
		{"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n" + strings.Repeat("x", 2048) + "\r\n0\r\n\r\n", 413},
	} {
		resp, body := rawExchange(t, base, tc.raw)
		if resp.StatusCode != tc.status {
			t.Errorf("%q: %d %s, want %d", tc.raw, resp.StatusCode, body, tc.status)
		}
	}
	if n := simA.Count(); n != 0 {
		t.Errorf("the provider got %d requests", n)
	}
}

// TestAIRouteTimeout: a route's timeout bounds its AI calls besides the
// AIGateway's own timeouts: a call still waiting for its answer gets 504,
// and a stream past its first token ends with an error event.
func TestAIRouteTimeout(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	arrived, stop := make(chan struct{}, 2), make(chan struct{})
	provSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"stream":true`)) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n")
			w.(http.Flusher).Flush()
		}
		arrived <- struct{}{}
		select { // the provider never finishes
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(provSrv.Close)
	prov := provSrv.URL
	spec := `  routes:
    - {name: llm, match: {path: {prefix: /v1}}, ai: assist, timeout: 5s}
---
kind: AIGateway
version: relia/v1
metadata: {name: assist}
spec:
  providers:
    - {name: a, type: openai, url: "` + prov + `/v1", keys: [{value: sk-a}]}
  routes:
    - {model: gpt-4o-mini, targets: [{provider: a}]}
`
	var calls callList
	_, base := startGateway(t, spec, Options{Clock: fc, Calls: &calls})
	t.Cleanup(func() { close(stop) }) // first: the provider's handler ends
	client := &http.Client{Timeout: 10 * time.Second}

	done := make(chan *http.Response, 1)
	go func() {
		resp, err := client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(aiHello))
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	<-arrived
	fc.Advance(5 * time.Second)
	resp := <-done
	if resp == nil {
		t.FailNow()
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout || !bytes.Contains(body, []byte("total timeout")) {
		t.Errorf("a call past the route's timeout: %d %s, want 504", resp.StatusCode, body)
	}

	stream := strings.Replace(aiHello, `"gpt-4o-mini"`, `"gpt-4o-mini","stream":true`, 1)
	resp, err := client.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := bufio.NewReader(resp.Body)
	readFirstToken(t, events)
	<-arrived
	fc.Advance(5 * time.Second)
	rest, err := io.ReadAll(events)
	if err != nil || !bytes.Contains(rest, []byte("stream_interrupted")) || !bytes.Contains(rest, []byte("total timeout")) {
		t.Errorf("a stream past the route's timeout ended with %q (%v), want its error event", rest, err)
	}
	recs := waitCalls(t, &calls, 2)
	if recs[0].Status != 504 || recs[1].Outcome != "failed_mid_stream" || recs[1].Reason != "timeout" {
		t.Errorf("records: %+v, %+v", recs[0], recs[1])
	}
}

// TestAIStreamClientHangUp: a client that closes its HTTP/1.1 connection
// while its stream waits on the provider is noticed at once, not at the
// stream's next write, on plain text and on TLS (where the client sends
// its close_notify alert before its end of stream): the provider's
// stream is cancelled and the call is recorded as client_closed.
func TestAIStreamClientHangUp(t *testing.T) {
	t.Parallel()
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "tls"}[overTLS], func(t *testing.T) {
			t.Parallel()
			fc := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) // no timeout fires
			cancelled, stop := make(chan struct{}), make(chan struct{})
			provSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n")
				w.(http.Flusher).Flush()
				select { // the next token never comes
				case <-r.Context().Done():
					close(cancelled)
				case <-stop:
				}
			}))
			t.Cleanup(provSrv.Close)
			var calls callList
			listeners := ""
			var tc *tls.Config
			if overTLS {
				certFile, keyFile, roots := selfSigned(t)
				listeners = fmt.Sprintf("  listeners: [{name: main, address: \"127.0.0.1:0\", tls: {certFile: %q, keyFile: %q}}]\n", certFile, keyFile)
				tc = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{"http/1.1"}}
			}
			g, _ := startGateway(t, fmt.Sprintf(aiSpec, listeners, provSrv.URL, provSrv.URL, ""), Options{Clock: fc, Calls: &calls})
			t.Cleanup(func() { close(stop) }) // first: the provider's handler ends
			var nc net.Conn
			var err error
			if overTLS {
				nc, err = tls.Dial("tcp", g.Addr("main"), tc)
			} else {
				nc, err = net.Dial("tcp", g.Addr("main"))
			}
			if err != nil {
				t.Fatal(err)
			}
			stream := strings.Replace(aiHello, `"gpt-4o-mini"`, `"gpt-4o-mini","stream":true`, 1)
			fmt.Fprintf(nc, "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(stream), stream)
			readFirstToken(t, bufio.NewReader(nc))
			nc.Close()
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the provider's stream went on after the client hung up")
			}
			rec := waitCalls(t, &calls, 1)[0]
			if rec.Reason != "client_closed" {
				t.Errorf("record of a stream whose client hung up: %+v, want reason client_closed", rec)
			}
		})
	}
}

// readFirstToken reads a stream up to its first token, "Hi".
func readFirstToken(t *testing.T, r *bufio.Reader) {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("before the first token: %v", err)
		}
		if strings.Contains(line, `"content":"Hi"`) {
			return
		}
	}
}
