package fault

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "20")
	io.WriteString(w, "0123456789abcdefghij")
})

func newFilterServer(t *testing.T, rules []HTTPRule, opts HTTPFilterOptions, next http.Handler) (*HTTPFilter, *httptest.Server) {
	t.Helper()
	f, err := NewHTTPFilter(rules, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(f.Wrap(next))
	t.Cleanup(srv.Close)
	return f, srv
}

func get(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestFaultHTTPFilterMatchingAndActions(t *testing.T) {
	t.Parallel()
	keep := int64(5)
	rules := []HTTPRule{
		{Name: "pay-down", Probability: 1, Fault: HTTPFault{Methods: []string{"POST"}, Path: "/pay/**", AbortStatus: 503, RetryAfter: 7}},
		{Name: "slow-header", Probability: 1, Fault: HTTPFault{Headers: map[string]string{"X-Tenant": "blue"}, AbortStatus: 429, RetryAfter: 1}},
		{Name: "cut", Probability: 1, Fault: HTTPFault{Path: "/cut", TruncateBody: &keep}},
		{Name: "flip", Probability: 1, Fault: HTTPFault{Path: "/flip", CorruptRate: 1}},
		{Name: "inject", Probability: 1, Fault: HTTPFault{Path: "/items/*/detail", SetHeaders: map[string]string{"X-Injected": "yes"}}},
	}
	_, srv := newFilterServer(t, rules, HTTPFilterOptions{Seed: 1}, okHandler)
	c := srv.Client()
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		status             int
		body, retryAfter   string
		injected           string
		wantErr            bool
	}{
		{"abort matches method and prefix", "POST", "/pay/card", nil, 503, `"fault":"pay-down"`, "7", "", false},
		{"prefix itself", "POST", "/pay", nil, 503, `"reason":"fault_injected"`, "7", "", false},
		{"other method passes", "GET", "/pay/card", nil, 200, "0123456789abcdefghij", "", "", false},
		{"other path passes", "POST", "/payroll", nil, 200, "0123456789abcdefghij", "", "", false},
		{"header match", "GET", "/", map[string]string{"X-Tenant": "blue"}, 429, `"fault":"slow-header"`, "1", "", false},
		{"header mismatch", "GET", "/", map[string]string{"X-Tenant": "red"}, 200, "0123456789abcdefghij", "", "", false},
		{"truncated body", "GET", "/cut", nil, 200, "01234", "", "", true},
		{"corrupted body", "GET", "/flip", nil, 200, flipAll("0123456789abcdefghij"), "", "", false},
		{"header injection glob", "GET", "/items/42/detail", nil, 200, "0123456789abcdefghij", "", "yes", false},
		{"glob is one segment", "GET", "/items/4/2/detail", nil, 200, "0123456789abcdefghij", "", "", false},
	}
	for _, tt := range tests {
		resp, body, err := get(t, c, tt.method, srv.URL+tt.path, tt.hdr)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) ||
			resp.Header.Get("Retry-After") != tt.retryAfter || resp.Header.Get("X-Injected") != tt.injected {
			t.Errorf("%s: %d %q Retry-After %q X-Injected %q", tt.name, resp.StatusCode, body, resp.Header.Get("Retry-After"), resp.Header.Get("X-Injected"))
		}
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: body read error %v, want error %v", tt.name, err, tt.wantErr)
		}
		if tt.wantErr && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%s: %v, want unexpected EOF", tt.name, err)
		}
	}
}

func flipAll(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] ^= 0xFF
	}
	return string(b)
}

func TestFaultHTTPFilterDelayOnFakeClock(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Unix(0, 0))
	_, srv := newFilterServer(t, []HTTPRule{{Name: "d", Probability: 1, Fault: HTTPFault{Delay: 1500}}}, HTTPFilterOptions{Clock: fc}, okHandler)
	checkDelayed(t, srv.Client(), srv.URL, fc, 1, 1500*time.Millisecond)
}

// checkDelayed asserts that a GET of url waits d on fc's timers (pending
// of them in all once it waits) and then succeeds.
func checkDelayed(t *testing.T, c *http.Client, url string, fc *clock.Fake, pending int, d time.Duration) {
	t.Helper()
	done := make(chan int, 1)
	go func() {
		resp, err := c.Get(url)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if w := nextWait(fc, pending); w != d {
		t.Fatalf("delay %v, want %v", w, d)
	}
	fc.Advance(d)
	if code := <-done; code != 200 {
		t.Fatalf("status %d after the delay", code)
	}
}

// decisions sends n requests one after another and returns which were
// faulted.
func decisions(t *testing.T, seed uint64, p float64, n int) []bool {
	_, srv := newFilterServer(t, []HTTPRule{{Name: "r", Probability: p, Fault: HTTPFault{AbortStatus: 500}}}, HTTPFilterOptions{Seed: seed}, okHandler)
	c := srv.Client()
	out := make([]bool, n)
	for i := range out {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		out[i] = resp.StatusCode == 500
	}
	return out
}

func TestFaultHTTPPercentagesOnLoopback(t *testing.T) {
	t.Parallel()
	const n = 2000
	a := decisions(t, 11, 0.2, n)
	b := decisions(t, 11, 0.2, n)
	if !equalBools(a, b) {
		t.Fatal("same seed, different per-request decisions")
	}
	if equalBools(a, decisions(t, 12, 0.2, n)) {
		t.Fatal("different seeds, same decisions")
	}
	checkBinomial(t, countTrue(a), n, 0.2)
}

// checkBinomial fails unless hits is within 5 standard deviations of n*p:
// a false failure is practically impossible, a wrong rate fails.
func checkBinomial(t *testing.T, hits, n int, p float64) {
	t.Helper()
	mean := float64(n) * p
	sigma := math.Sqrt(float64(n) * p * (1 - p))
	if math.Abs(float64(hits)-mean) > 5*sigma+1 {
		t.Fatalf("p=%v: %d of %d faulted, want %.1f±%.1f", p, hits, n, mean, 5*sigma)
	}
}

func TestFaultHTTPSmallPercentages(t *testing.T) {
	t.Parallel()
	// In process (no sockets) to afford enough requests for 0.01%.
	const n = 400000
	for _, p := range []float64{0.0001, 0.001, 0.05} {
		f, err := NewHTTPFilter([]HTTPRule{{Name: "r", Probability: p, Fault: HTTPFault{AbortStatus: 503}}}, HTTPFilterOptions{Seed: 5})
		if err != nil {
			t.Fatal(err)
		}
		h := f.Wrap(okHandler)
		req := httptest.NewRequest("GET", "/", nil)
		for range n {
			h.ServeHTTP(discardWriter{}, req)
		}
		checkBinomial(t, int(f.Faulted()["r"]), n, p)
	}
}

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

func TestFaultHTTPTriggerHeaderCap(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})
	rules := []HTTPRule{{Name: "tagged", Probability: 0, Fault: HTTPFault{SetHeaders: map[string]string{"X-Faulted": "1"}}}}
	_, srv := newFilterServer(t, rules, HTTPFilterOptions{MaxTriggered: 1}, slow)
	c := srv.Client()
	trig := map[string]string{DefaultTriggerHeader: "tagged"}

	// Probability 0: without the header the rule never fires.
	if resp, _, _ := get(t, c, "GET", srv.URL+"/", nil); resp.Header.Get("X-Faulted") != "" {
		t.Fatal("a rule with probability 0 fired without the header")
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var first *http.Response
	go func() {
		defer wg.Done()
		first, _, _ = get(t, c, "GET", srv.URL+"/hold", trig)
	}()
	<-entered // the first triggered fault is active
	resp, _, _ := get(t, c, "GET", srv.URL+"/", trig)
	if resp.Header.Get("X-Faulted") != "" || resp.Header.Get(DefaultTriggerHeader+"-Refused") == "" {
		t.Fatalf("second triggered request over the cap of 1: headers %v", resp.Header)
	}
	close(release)
	wg.Wait()
	if first.Header.Get("X-Faulted") != "1" {
		t.Fatal("the triggered request was not faulted")
	}
	if resp, _, _ := get(t, c, "GET", srv.URL+"/", trig); resp.Header.Get("X-Faulted") != "1" {
		t.Fatal("once the cap frees, the header triggers the fault again")
	}
}

func TestFaultHTTPRulesValidated(t *testing.T) {
	t.Parallel()
	neg := int64(-1)
	bad := []HTTPRule{
		{Name: "", Probability: 1},
		{Name: "p", Probability: 1.5},
		{Name: "p", Probability: -0.1},
		{Name: "s", Probability: 1, Fault: HTTPFault{AbortStatus: 99}},
		{Name: "r", Probability: 1, Fault: HTTPFault{RetryAfter: 5}},
		{Name: "t", Probability: 1, Fault: HTTPFault{TruncateBody: &neg}},
		{Name: "c", Probability: 1, Fault: HTTPFault{CorruptRate: 2}},
		{Name: "m", Probability: 1, Fault: HTTPFault{Methods: []string{"get"}}},
		{Name: "x", Probability: 1, Fault: HTTPFault{Path: "no-slash"}},
		{Name: "y", Probability: 1, Fault: HTTPFault{Path: "/[bad"}},
		{Name: "d", Probability: 1, Fault: HTTPFault{Delay: -5}},
		{Name: "d", Probability: 1, Fault: HTTPFault{Delay: maxMillis + 1}},
		{Name: "h", Probability: 1, Fault: HTTPFault{SetHeaders: map[string]string{"X-Split": "a\r\nX-Evil: 1"}}},
		{Name: "h", Probability: 1, Fault: HTTPFault{SetHeaders: map[string]string{"Bad Name": "x"}}},
		{Name: "h", Probability: 1, Fault: HTTPFault{Headers: map[string]string{"": "x"}}},
	}
	for _, r := range bad {
		if _, err := NewHTTPFilter([]HTTPRule{r}, HTTPFilterOptions{}); err == nil {
			t.Errorf("rule %+v accepted", r)
		}
	}
	if _, err := NewHTTPFilter([]HTTPRule{{Name: "a", Probability: 1}, {Name: "a", Probability: 1}}, HTTPFilterOptions{}); err == nil {
		t.Error("duplicate names accepted")
	}
	if _, err := NewHTTPFilter(nil, HTTPFilterOptions{MaxTriggered: -1}); err == nil {
		t.Error("negative cap accepted")
	}
}

func TestFaultHTTPModeProxy(t *testing.T) {
	t.Parallel()
	s, fc, audit := newTestServer(t, 9)
	up := httptest.NewServer(okHandler)
	defer up.Close()
	h := s.Handler(HandlerOptions{})
	code, body := apiDo(t, h, "POST", "/proxies", `{"name":"web","listen":"127.0.0.1:0","upstream":"`+strings.TrimPrefix(up.URL, "http://")+`","mode":"http"}`)
	if code != 201 || !strings.Contains(body, `"mode":"http"`) {
		t.Fatalf("create: %d %s", code, body)
	}
	info, _ := s.Proxy("web")
	base := "http://" + info.Listen
	steps := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/proxies/web/toxics", `{"type":"latency"}`, 400, "latency toxics do not apply to a proxy in http mode"},
		{"POST", "/proxies/web/toxics", `{"name":"pay","type":"http","lease_ttl":"10s","attributes":{"path":"/pay/**","abort_status":503,"retry_after":2}}`, 200, `"abort_status":503`},
		{"POST", "/proxies/web/toxics", `{"name":"bad","type":"http","attributes":{"abort_status":700}}`, 400, "abort_status must be within [200, 599]"},
	}
	for _, st := range steps {
		if code, body := apiDo(t, h, st.method, st.path, st.body); code != st.status || !strings.Contains(body, st.want) {
			t.Fatalf("%s %s: %d %s", st.path, st.body, code, body)
		}
	}
	c := &http.Client{}
	if resp, _, _ := get(t, c, "GET", base+"/pay/now", nil); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("faulted path: %d", resp.StatusCode)
	}
	if resp, body, _ := get(t, c, "GET", base+"/shop", nil); resp.StatusCode != 200 || body != "0123456789abcdefghij" {
		t.Fatalf("clean path through the proxy: %d %q", resp.StatusCode, body)
	}
	// A TCP toxic cannot land on it, and an http toxic not on a TCP proxy.
	addProxy(t, s, "tcp", strings.TrimPrefix(up.URL, "http://"))
	if code, _ := apiDo(t, h, "POST", "/proxies/tcp/toxics", `{"type":"http"}`); code != 400 {
		t.Fatalf("http toxic on a tcp proxy: %d", code)
	}
	fc.Advance(10 * time.Second)
	waitGone(t, s, "web", "pay")
	if resp, _, _ := get(t, c, "GET", base+"/pay/now", nil); resp.StatusCode != 200 {
		t.Fatalf("after the lease expired: %d", resp.StatusCode)
	}
	if ended := audit.records(t, "fault ended"); len(ended) != 1 || ended[0]["reason"] != EndExpired {
		t.Fatalf("audit %v", ended)
	}
}

// httpModeProxy starts a server with a proxy in HTTP mode in front of
// okHandler and adds toxics (JSON bodies); it returns the proxy's base URL.
func httpModeProxy(t *testing.T, seed uint64, toxics ...string) (*Server, *clock.Fake, string) {
	t.Helper()
	s, fc, _ := newTestServer(t, seed)
	up := httptest.NewServer(okHandler)
	t.Cleanup(up.Close)
	info, err := s.CreateProxy(ProxyConfig{Name: "web", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://"), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range toxics {
		addToxic(t, s, "web", body)
	}
	return s, fc, "http://" + info.Listen
}

func TestFaultHTTPModeProxyActions(t *testing.T) {
	t.Parallel()
	_, fc, base := httpModeProxy(t, 3,
		`{"name":"slow","type":"http","attributes":{"path":"/slow","delay":750}}`,
		`{"name":"cut","type":"http","attributes":{"path":"/cut","truncate_body":4}}`,
		`{"name":"flip","type":"http","attributes":{"path":"/flip","corrupt_rate":1}}`,
		`{"name":"tag","type":"http","attributes":{"methods":["PUT"],"set_headers":{"X-Fault":"tagged"}}}`,
		`{"name":"busy","type":"http","attributes":{"headers":{"X-Tenant":"blue"},"abort_status":429,"retry_after":3}}`,
	)
	c := &http.Client{}
	// The delay waits on the server's clock (the toxics have no lease).
	checkDelayed(t, c, base+"/slow", fc, 1, 750*time.Millisecond)
	tests := []struct {
		method, path string
		hdr          map[string]string
		status       int
		body         string
		readErr      bool
		header       [2]string
	}{
		{"GET", "/cut", nil, 200, "0123", true, [2]string{}},
		{"GET", "/flip", nil, 200, flipAll("0123456789abcdefghij"), false, [2]string{}},
		{"PUT", "/any", nil, 200, "0123456789abcdefghij", false, [2]string{"X-Fault", "tagged"}},
		{"GET", "/any", nil, 200, "0123456789abcdefghij", false, [2]string{"X-Fault", ""}},
		{"GET", "/any", map[string]string{"X-Tenant": "blue"}, 429, `"fault":"busy"`, false, [2]string{"Retry-After", "3"}},
	}
	for _, tt := range tests {
		resp, body, err := get(t, c, tt.method, base+tt.path, tt.hdr)
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) || (err != nil) != tt.readErr {
			t.Errorf("%s %s: %d %q, read error %v", tt.method, tt.path, resp.StatusCode, body, err)
		}
		if tt.header[0] != "" && resp.Header.Get(tt.header[0]) != tt.header[1] {
			t.Errorf("%s %s: %s = %q, want %q", tt.method, tt.path, tt.header[0], resp.Header.Get(tt.header[0]), tt.header[1])
		}
	}
}

// proxyDecisions sends n requests through a proxy in HTTP mode whose
// toxic aborts the share p, and returns which were aborted.
func proxyDecisions(t *testing.T, seed uint64, p string, n int) []bool {
	_, _, base := httpModeProxy(t, seed, `{"name":"some","type":"http","toxicity":`+p+`,"attributes":{"abort_status":503}}`)
	c := &http.Client{}
	out := make([]bool, n)
	for i := range out {
		resp, _, _ := get(t, c, "GET", base+"/", nil)
		out[i] = resp.StatusCode == 503
	}
	return out
}

func TestFaultHTTPModeProxyPercentagesAndSeed(t *testing.T) {
	t.Parallel()
	const n = 1000
	a := proxyDecisions(t, 8, "0.25", n)
	if !equalBools(a, proxyDecisions(t, 8, "0.25", n)) {
		t.Fatal("same seed, different per-request decisions through the proxy")
	}
	checkBinomial(t, countTrue(a), n, 0.25)
}

func TestFaultHTTPModeProxyTriggerHeader(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 4)
	up := httptest.NewServer(okHandler)
	defer up.Close()
	h := s.Handler(HandlerOptions{})
	body := `{"name":"web","listen":"127.0.0.1:0","upstream":"` + strings.TrimPrefix(up.URL, "http://") + `","mode":"http","max_triggered":1}`
	if code, out := apiDo(t, h, "POST", "/proxies", body); code != 201 {
		t.Fatalf("create: %d %s", code, out)
	}
	// Toxicity 0: the fault fires only when a request asks for it.
	addToxic(t, s, "web", `{"name":"on-demand","type":"http","toxicity":0,"attributes":{"abort_status":500}}`)
	info, _ := s.Proxy("web")
	base := "http://" + info.Listen
	c := &http.Client{}
	if resp, _, _ := get(t, c, "GET", base+"/", nil); resp.StatusCode != 200 {
		t.Fatalf("without the header: %d", resp.StatusCode)
	}
	if resp, _, _ := get(t, c, "GET", base+"/", map[string]string{DefaultTriggerHeader: "on-demand"}); resp.StatusCode != 500 {
		t.Fatalf("with the header: %d", resp.StatusCode)
	}
	if resp, _, _ := get(t, c, "GET", base+"/", map[string]string{DefaultTriggerHeader: "no-such-fault"}); resp.StatusCode != 200 {
		t.Fatalf("asking for a fault that does not exist: %d", resp.StatusCode)
	}
	if code, out := apiDo(t, h, "POST", "/proxies", `{"name":"x","upstream":"127.0.0.1:1","mode":"http","max_triggered":-1}`); code != 400 || !strings.Contains(out, "max_triggered must not be negative") {
		t.Fatalf("negative cap: %d %s", code, out)
	}
}

func TestFaultHTTPModePassesRequestsAsSent(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "encoding=%q host=%s", r.Header.Get("Accept-Encoding"), r.Host)
	}))
	defer up.Close()
	info, err := s.CreateProxy(ProxyConfig{Name: "web", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://"), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	// A client that asks for no compression: the proxy must not ask for
	// it on the client's behalf.
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, _ := http.NewRequest("GET", "http://"+info.Listen+"/", nil)
	req.Host = "shop.example"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != `encoding="" host=shop.example` {
		t.Fatalf("upstream saw %s", body)
	}
}

// TestFaultHTTPModeHeadersInOrder: the proxy writes an answer's fields
// in one order (sorted by name), so the same answer is the same bytes
// every time; in a map's order it changed from answer to answer.
func TestFaultHTTPModeHeadersInOrder(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, k := range []string{"X-Kilo", "X-Alfa", "X-Juliett", "X-Bravo", "X-India", "X-Charlie", "X-Hotel", "X-Delta", "X-Golf", "X-Echo", "X-Foxtrot"} {
			w.Header().Set(k, "1")
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	info, err := s.CreateProxy(ProxyConfig{Name: "web", Listen: "127.0.0.1:0", Upstream: strings.TrimPrefix(up.URL, "http://"), Mode: "http"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", info.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd := bufio.NewReader(c)
	for range 3 {
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var names []string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
			if name, _, ok := strings.Cut(line, ":"); ok {
				names = append(names, name)
			}
		}
		if !slices.IsSorted(names) {
			t.Fatalf("fields %v, want them sorted", names)
		}
		resp := make([]byte, 2)
		if _, err := io.ReadFull(rd, resp); err != nil || string(resp) != "ok" {
			t.Fatalf("body %q %v", resp, err)
		}
	}
}
