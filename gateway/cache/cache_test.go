package cache_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/cache"
)

var (
	get  = cache.Key{Method: http.MethodGet, Host: "shop.example", Target: "/catalog?page=1"}
	head = cache.Key{Method: http.MethodHead, Host: get.Host, Target: get.Target}
)

func newCache(t testing.TB, s cache.Settings) (*cache.Cache, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Time{})
	s.Clock = clk
	c, err := cache.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

// hdr builds a header from name, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// state is what a Lookup found, in one comparable value.
type state struct {
	hit, fresh, staleOK bool
}

func lookup(c *cache.Cache, k cache.Key, req http.Header) state {
	e, fresh, staleOK := c.Lookup(k, req)
	return state{e != nil, fresh, staleOK}
}

func TestFreshnessOverTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header http.Header
		// at is what Lookup finds after each step of time.
		steps []time.Duration
		want  []state
	}{
		{"max-age", hdr("Cache-Control", "max-age=60"),
			[]time.Duration{0, 59 * time.Second, time.Second},
			[]state{{true, true, false}, {true, true, false}, {false, false, false}}},
		{"stale-if-error window", hdr("Cache-Control", "max-age=10, stale-if-error=20"),
			[]time.Duration{5 * time.Second, 10 * time.Second, 15 * time.Second, time.Second},
			[]state{{true, true, false}, {true, false, true}, {true, false, true}, {false, false, false}}},
		{"stale-if-error alone", hdr("Cache-Control", "max-age=0, stale-if-error=30"),
			[]time.Duration{0, 30 * time.Second, time.Second},
			[]state{{true, false, true}, {true, false, true}, {false, false, false}}},
		{"must-revalidate forbids stale", hdr("Cache-Control", "max-age=10, stale-if-error=20, must-revalidate"),
			[]time.Duration{5 * time.Second, 6 * time.Second},
			[]state{{true, true, false}, {false, false, false}}},
		{"s-maxage forbids stale and wins over max-age", hdr("Cache-Control", "max-age=100, s-maxage=10, stale-if-error=20"),
			[]time.Duration{9 * time.Second, time.Second},
			[]state{{true, true, false}, {false, false, false}}},
		{"expires against date", hdr("Date", "Thu, 01 Jan 2026 00:00:00 GMT", "Expires", "Thu, 01 Jan 2026 00:01:00 GMT"),
			[]time.Duration{59 * time.Second, time.Second},
			[]state{{true, true, false}, {false, false, false}}},
		{"max-age wins over expires", hdr("Cache-Control", "max-age=5", "Expires", "Thu, 01 Jan 2026 01:00:00 GMT"),
			[]time.Duration{4 * time.Second, time.Second},
			[]state{{true, true, false}, {false, false, false}}},
		{"age header counts", hdr("Cache-Control", "max-age=60", "Age", "50"),
			[]time.Duration{9 * time.Second, time.Second},
			[]state{{true, true, false}, {false, false, false}}},
		{"an old date counts", hdr("Cache-Control", "max-age=60", "Date", "Wed, 31 Dec 2025 23:59:30 GMT"),
			[]time.Duration{29 * time.Second, time.Second},
			[]state{{true, true, false}, {false, false, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk := newCache(t, cache.Settings{})
			if !c.Store(get, http.Header{}, 200, tt.header, []byte("body")) {
				t.Fatal("Store refused a cacheable response")
			}
			for i, step := range tt.steps {
				clk.Advance(step)
				if got := lookup(c, get, http.Header{}); got != tt.want[i] {
					t.Fatalf("step %d (%s in): %+v, want %+v", i, clk.Since(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), got, tt.want[i])
				}
			}
			if c.Len() != 0 && !tt.want[len(tt.want)-1].hit {
				t.Fatalf("an entry past all use is still held (Len %d)", c.Len())
			}
		})
	}
}

func TestAgeOfHits(t *testing.T) {
	t.Parallel()
	c, clk := newCache(t, cache.Settings{})
	c.Store(get, http.Header{}, 200, hdr("Cache-Control", "max-age=600", "Age", "100", "Content-Type", "text/plain"), []byte("hello"))
	clk.Advance(42 * time.Second)
	e, fresh, _ := c.Lookup(get, http.Header{})
	if e == nil || !fresh {
		t.Fatal("no fresh hit")
	}
	if got := cache.AgeHeader(e.Age(clk.Now())); got != "142" {
		t.Fatalf("Age = %s, want 142", got)
	}
	if e.Status != 200 || string(e.Body) != "hello" || e.Header.Get("Content-Type") != "text/plain" || e.Header.Get("Age") != "" {
		t.Fatalf("entry = %d %q %v", e.Status, e.Body, e.Header)
	}
}

func TestStoreRefuses(t *testing.T) {
	t.Parallel()
	fresh := "max-age=60"
	tests := []struct {
		name   string
		key    cache.Key
		req    http.Header
		status int
		header http.Header
		stored bool
	}{
		{"plain max-age", get, nil, 200, hdr("Cache-Control", fresh), true},
		{"404 with max-age", get, nil, 404, hdr("Cache-Control", fresh), true},
		{"no freshness", get, nil, 200, hdr("Content-Type", "text/plain"), false},
		{"expired Expires", get, nil, 200, hdr("Expires", "0"), false},
		{"no-store", get, nil, 200, hdr("Cache-Control", fresh+", no-store"), false},
		{"no-cache", get, nil, 200, hdr("Cache-Control", fresh+", no-cache"), false},
		{"private", get, nil, 200, hdr("Cache-Control", "private, "+fresh), false},
		{"private on a second line", get, nil, 200, hdr("Cache-Control", fresh, "Cache-Control", "private"), false},
		{"request no-store", get, hdr("Cache-Control", "no-store"), 200, hdr("Cache-Control", fresh), false},
		{"authorized request", get, hdr("Authorization", "Bearer x"), 200, hdr("Cache-Control", fresh), false},
		{"authorized request, public", get, hdr("Authorization", "Bearer x"), 200, hdr("Cache-Control", "public, "+fresh), true},
		{"authorized request, s-maxage", get, hdr("Authorization", "Bearer x"), 200, hdr("Cache-Control", "s-maxage=60"), true},
		{"set-cookie", get, nil, 200, hdr("Cache-Control", fresh, "Set-Cookie", "session=1"), false},
		{"vary star", get, nil, 200, hdr("Cache-Control", fresh, "Vary", "Accept, *"), false},
		{"partial content", get, nil, 206, hdr("Cache-Control", fresh), false},
		{"not modified", get, nil, 304, hdr("Cache-Control", fresh), false},
		{"head response", head, nil, 200, hdr("Cache-Control", fresh), false},
		{"post response", cache.Key{Method: http.MethodPost, Host: get.Host, Target: get.Target}, nil, 200, hdr("Cache-Control", fresh), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newCache(t, cache.Settings{})
			if tt.req == nil {
				tt.req = http.Header{}
			}
			if got := c.Store(tt.key, tt.req, tt.status, tt.header, []byte("x")); got != tt.stored {
				t.Fatalf("Store = %v, want %v", got, tt.stored)
			}
			if hit := lookup(c, get, tt.req).hit; hit != tt.stored {
				t.Fatalf("Lookup hit = %v after Store = %v", hit, tt.stored)
			}
		})
	}
}

func TestRequestDirectives(t *testing.T) {
	t.Parallel()
	tests := []struct {
		req  http.Header
		want state
	}{
		{hdr(), state{true, true, false}},
		{hdr("Cache-Control", "no-cache"), state{true, false, true}},
		{hdr("Pragma", "no-cache"), state{true, false, true}},
		{hdr("Cache-Control", "max-age=5"), state{true, false, true}},
		{hdr("Cache-Control", "max-age=10"), state{true, true, false}},
		{hdr("Cache-Control", "min-fresh=55"), state{true, false, true}},
		{hdr("Cache-Control", "min-fresh=50"), state{true, true, false}},
	}
	for _, tt := range tests {
		c, clk := newCache(t, cache.Settings{})
		c.Store(get, http.Header{}, 200, hdr("Cache-Control", "max-age=60, stale-if-error=60"), nil)
		clk.Advance(10 * time.Second)
		if got := lookup(c, get, tt.req); got != tt.want {
			t.Errorf("request %v at age 10s of 60s: %+v, want %+v", tt.req, got, tt.want)
		}
	}
}

func TestHeadAndOtherMethods(t *testing.T) {
	t.Parallel()
	c, _ := newCache(t, cache.Settings{})
	c.Store(get, http.Header{}, 200, hdr("Cache-Control", "max-age=60"), []byte("x"))
	if got := lookup(c, head, http.Header{}); got != (state{true, true, false}) {
		t.Fatalf("HEAD lookup: %+v, want the GET entry", got)
	}
	for _, m := range []string{http.MethodPost, http.MethodDelete, "get"} {
		if got := lookup(c, cache.Key{Method: m, Host: get.Host, Target: get.Target}, http.Header{}); got.hit {
			t.Fatalf("%s lookup hit", m)
		}
	}
	if lookup(c, cache.Key{Method: http.MethodGet, Host: "other.example", Target: get.Target}, http.Header{}).hit {
		t.Fatal("another host hit")
	}
}

func TestVary(t *testing.T) {
	t.Parallel()
	c, _ := newCache(t, cache.Settings{})
	gz := hdr("Accept-Encoding", "gzip")
	br := hdr("accept-encoding", "br")
	resp := func() http.Header { return hdr("Cache-Control", "max-age=60", "Vary", "accept-encoding") }
	c.Store(get, gz, 200, resp(), []byte("gzip body"))
	if !lookup(c, get, gz).hit || lookup(c, get, br).hit || lookup(c, get, http.Header{}).hit {
		t.Fatal("a variant served a request whose varied header differs")
	}
	c.Store(get, br, 200, resp(), []byte("br body"))
	if e, _, _ := c.Lookup(get, br); e == nil || string(e.Body) != "br body" {
		t.Fatal("the br variant is not served to br requests")
	}
	if e, _, _ := c.Lookup(get, gz); e == nil || string(e.Body) != "gzip body" {
		t.Fatal("storing the br variant lost the gzip one")
	}
	// A newer gzip answer replaces the old one rather than adding to it.
	c.Store(get, gz, 200, resp(), []byte("new gzip body"))
	if e, _, _ := c.Lookup(get, gz); c.Len() != 2 || e == nil || string(e.Body) != "new gzip body" {
		t.Fatalf("after replacing a variant: Len %d, want 2 and the new body", c.Len())
	}
	// A response that stops varying replaces what its request found.
	c.Store(get, gz, 200, hdr("Cache-Control", "max-age=60"), []byte("plain"))
	if e, _, _ := c.Lookup(get, gz); e == nil || string(e.Body) != "plain" {
		t.Fatal("the plain response is not served")
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	body := make([]byte, 1000)
	c, _ := newCache(t, cache.Settings{MaxBytes: 4000, MaxEntryBytes: 2000})
	key := func(p string) cache.Key { return cache.Key{Method: http.MethodGet, Host: "h", Target: p} }
	fresh := func() http.Header { return hdr("Cache-Control", "max-age=60") }
	for _, p := range []string{"/a", "/b", "/c"} {
		if !c.Store(key(p), http.Header{}, 200, fresh(), body) {
			t.Fatalf("Store(%s) refused", p)
		}
	}
	lookup(c, key("/a"), http.Header{}) // /b is now the least recently used
	c.Store(key("/d"), http.Header{}, 200, fresh(), body)
	for p, want := range map[string]bool{"/a": true, "/b": false, "/c": true, "/d": true} {
		if got := lookup(c, key(p), http.Header{}).hit; got != want {
			t.Errorf("%s held = %v, want %v", p, got, want)
		}
	}
	if c.Bytes() > 4000 || c.Len() != 3 {
		t.Fatalf("Bytes %d, Len %d: want at most 4000 and 3", c.Bytes(), c.Len())
	}
	if c.Store(key("/big"), http.Header{}, 200, fresh(), make([]byte, 2000)) {
		t.Fatal("an entry above MaxEntryBytes was stored")
	}
}

func TestInvalidate(t *testing.T) {
	t.Parallel()
	c, _ := newCache(t, cache.Settings{})
	for _, ae := range []string{"gzip", "br"} {
		c.Store(get, hdr("Accept-Encoding", ae), 200, hdr("Cache-Control", "max-age=60", "Vary", "Accept-Encoding"), []byte(ae))
	}
	other := cache.Key{Method: http.MethodGet, Host: get.Host, Target: "/other"}
	c.Store(other, http.Header{}, 200, hdr("Cache-Control", "max-age=60"), nil)
	c.Invalidate(cache.Key{Method: http.MethodPost, Host: get.Host, Target: get.Target})
	if c.Len() != 1 || !lookup(c, other, http.Header{}).hit || lookup(c, get, hdr("Accept-Encoding", "br")).hit {
		t.Fatalf("after Invalidate: Len %d, want only /other left", c.Len())
	}
}

func TestStoreCopiesAndStripsHopByHop(t *testing.T) {
	t.Parallel()
	c, _ := newCache(t, cache.Settings{})
	header := hdr("Cache-Control", "max-age=60", "Connection", "close, X-Hop", "X-Hop", "1", "Keep-Alive", "timeout=5",
		"Transfer-Encoding", "chunked", "Age", "3", "Content-Type", "text/plain")
	body := []byte("original")
	c.Store(get, http.Header{}, 200, header, body)
	copy(body, "mutated!")
	header.Set("Content-Type", "changed")
	e, _, _ := c.Lookup(get, http.Header{})
	if string(e.Body) != "original" || e.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("entry shares the caller's buffers: %q %v", e.Body, e.Header)
	}
	for _, name := range []string{"Connection", "X-Hop", "Keep-Alive", "Transfer-Encoding", "Age"} {
		if v := e.Header.Get(name); v != "" {
			t.Errorf("stored header keeps %s: %q", name, v)
		}
	}
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	t.Parallel()
	for _, s := range []cache.Settings{{MaxBytes: -1}, {MaxEntryBytes: -1}, {MaxBytes: 10, MaxEntryBytes: 11}} {
		if _, err := cache.New(s); err == nil || !strings.HasPrefix(err.Error(), "cache: max") {
			t.Errorf("New(%+v) = %v, want an error", s, err)
		}
	}
	c, err := cache.New(cache.Settings{})
	if err != nil || c.Bytes() != 0 || c.Len() != 0 {
		t.Fatalf("New(zero) = %v, %v", c, err)
	}
}

func TestLookupHitDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	c, _ := newCache(t, cache.Settings{})
	req := hdr("Accept-Encoding", "gzip", "Cache-Control", "max-age=100")
	c.Store(get, req, 200, hdr("Cache-Control", "max-age=60", "Vary", "Accept-Encoding"), []byte("x"))
	allocs := testing.AllocsPerRun(1000, func() {
		if e, fresh, _ := c.Lookup(get, req); e == nil || !fresh {
			t.Fatal("no fresh hit")
		}
	})
	if allocs != 0 {
		t.Fatalf("Lookup hit allocates %v times, want 0", allocs)
	}
}

func BenchmarkLookupHit(b *testing.B) {
	c, err := cache.New(cache.Settings{}) // the real clock, as in production
	if err != nil {
		b.Fatal(err)
	}
	req := hdr("Accept-Encoding", "gzip")
	c.Store(get, req, 200, hdr("Cache-Control", "max-age=60", "Vary", "Accept-Encoding"), make([]byte, 1024))
	b.ReportAllocs()
	for b.Loop() {
		if e, _, _ := c.Lookup(get, req); e == nil {
			b.Fatal("miss")
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	c, clk := newCache(t, cache.Settings{MaxBytes: 64 << 10})
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 500 {
				k := cache.Key{Method: http.MethodGet, Host: "h", Target: "/" + string(rune('a'+(g*7+i)%26))}
				if i%3 == 0 {
					c.Store(k, http.Header{}, 200, hdr("Cache-Control", "max-age=1, stale-if-error=1"), make([]byte, 512))
				} else if e, _, _ := c.Lookup(k, http.Header{}); e != nil && len(e.Body) != 512 {
					t.Errorf("entry body %d bytes", len(e.Body))
				}
				if i%100 == 0 {
					clk.Advance(time.Second)
					c.Invalidate(k)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	if c.Bytes() > 64<<10 || c.Bytes() < 0 || (c.Len() == 0) != (c.Bytes() == 0) {
		t.Fatalf("Bytes %d, Len %d after concurrent use", c.Bytes(), c.Len())
	}
}
