package load

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

func mustTemplate(t testing.TB, src string, scope *Scope) *Template {
	t.Helper()
	tmpl, err := ParseTemplate(src, scope)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func TestWorkerSendExtractsChecksAndRenders(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, fmt.Sprintf("%s %s auth=%s body=%s", r.Method, r.URL.Path, r.Header.Get("Authorization"), body))
		mu.Unlock()
		if r.URL.Path == "/login" {
			_, _ = io.WriteString(w, `{"token":"s3cret"}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"state":"queued"}`)
	}))
	defer srv.Close()

	scope, _ := NewScope([]string{"user", "token"}, nil)
	tokenSlot, _ := scope.Slot("token")
	tokenPath, _ := ParseJSONPath("$.token")
	statePath, _ := ParseJSONPath("$.state")
	queued := "queued"
	login := &Step{Name: "login", Method: "POST", URL: mustTemplate(t, srv.URL+"/login", scope),
		Body:    mustTemplate(t, `{"user":"{{user}}"}`, scope),
		Extract: []Extraction{{Var: "token", Slot: tokenSlot, Path: tokenPath}}}
	pay := &Step{Name: "pay", Method: "POST", URL: mustTemplate(t, srv.URL+"/pay/{{randInt 7 7}}", scope),
		Headers: []HeaderTemplate{{Key: "Authorization", Value: mustTemplate(t, "Bearer {{token}}", scope)}},
		Checks: []Check{
			{Status: []int{202}},
			{JSONPath: statePath, Equals: &queued},
			{Status: []int{200}}, // fails on purpose: bit 2
		}}
	for _, s := range []*Step{login, pay} {
		if err := s.Prepare(); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := newTransport(ClientOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	w := newWorker(tr, clock.Real(), []string{"alice", ""}, 1, 0)
	if res := w.Send(login); res.Err != nil || res.Status != 200 {
		t.Fatalf("login: %+v", res)
	}
	if w.Env.Vars[tokenSlot] != "s3cret" {
		t.Fatalf("token not extracted: %q", w.Env.Vars)
	}
	res := w.Send(pay)
	if res.Err != nil || res.Status != 202 || res.ChecksRun != 3 || res.FailedChecks != 1<<2 {
		t.Fatalf("pay: %+v", res)
	}
	if res.BytesIn == 0 || res.BytesOut == 0 || res.Done.Before(res.Sent) {
		t.Fatalf("pay accounting: %+v", res)
	}
	want := []string{`POST /login auth= body={"user":"alice"}`, `POST /pay/7 auth=Bearer s3cret body=`}
	mu.Lock() // the race detector cannot see the order a socket gives
	got := strings.Join(seen, "\n")
	mu.Unlock()
	if got != strings.Join(want, "\n") {
		t.Fatalf("server saw\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	// A missing path in an extraction is an error naming it.
	missing, _ := ParseJSONPath("$.nope")
	bad := &Step{Name: "login", URL: login.URL, Extract: []Extraction{{Var: "token", Slot: tokenSlot, Path: missing}}}
	_ = bad.Prepare()
	if res := w.Send(bad); res.Err == nil || !strings.Contains(res.Err.Error(), "$.nope not found") {
		t.Fatalf("missing extraction: %v", res.Err)
	}
}

// rawServer answers every request on a connection with the same bytes,
// allocating nothing per request, so allocation counts in a test measure
// the client alone. It serves bodiless requests only.
func rawServer(t *testing.T, response string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				resp := []byte(response)
				have := 0
				for {
					n, err := c.Read(buf[have:])
					if err != nil {
						return
					}
					have += n
					for {
						end := bytes.Index(buf[:have], []byte("\r\n\r\n"))
						if end < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						have = copy(buf, buf[end+4:have])
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestWorkerSendDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; run without -race (make bench does)")
	}
	url := rawServer(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")
	scope, _ := NewScope([]string{"token"}, nil)
	s := &Step{Name: "get", URL: mustTemplate(t, url+"/item/{{randInt 1 100}}", scope),
		Headers: []HeaderTemplate{{Key: "Authorization", Value: mustTemplate(t, "Bearer {{token}}", scope)}},
		Checks:  []Check{{Status: []int{200}}}}
	if err := s.Prepare(); err != nil {
		t.Fatal(err)
	}
	tr, _ := newTransport(ClientOptions{Timeout: 5 * time.Second})
	defer tr.close()
	w := newWorker(tr, clock.Real(), []string{"x"}, 1, 0)
	w.Send(s) // connect and size the buffers
	if allocs := testing.AllocsPerRun(200, func() { w.Send(s) }); allocs > 0 {
		t.Fatalf("sending a request allocates %.1f times", allocs)
	}
	// Nor with a traceparent on it.
	w.traceSample = 1
	w.Send(s)
	if allocs := testing.AllocsPerRun(200, func() { w.Send(s) }); allocs > 0 {
		t.Fatalf("sending a traced request allocates %.1f times", allocs)
	}
}

func TestMixFollowsWeights(t *testing.T) {
	a, b, c := &Step{Name: "a", Weight: 80}, &Step{Name: "b", Weight: 20}, &Step{Name: "c", Weight: 0}
	m, err := NewMix([]*Step{a, b, c})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	counts := map[string]int{}
	const n = 20000
	for range n {
		counts[m.Pick(r).Name]++
	}
	// 80% of 20000 is 16000 with a standard deviation of about 57: five
	// sigmas is 283.
	if d := counts["a"] - 16000; d < -283 || d > 283 || counts["c"] != 0 {
		t.Fatalf("picks %v, want about 16000/4000/0", counts)
	}
	if _, err := NewMix([]*Step{c}); err == nil {
		t.Fatal("a mix with no positive weight was accepted")
	}
}

func TestStepPrepareRejectsBadSteps(t *testing.T) {
	u := mustTemplate(t, "http://x/", nil)
	for name, s := range map[string]*Step{
		"no url":          {Name: "a"},
		"negative think":  {Name: "a", URL: u, ThinkMin: -1},
		"max below min":   {Name: "a", URL: u, ThinkMin: 2, ThinkMax: 1},
		"negative weight": {Name: "a", URL: u, Weight: -1},
		"empty header":    {Name: "a", URL: u, Headers: []HeaderTemplate{{Key: ""}}},
	} {
		if err := s.Prepare(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
