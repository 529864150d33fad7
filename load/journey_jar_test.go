package load

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// cookieFlood is a hostile target: every response sets perResponse new
// cookies (names never used before) with values of valueLen bytes; it
// notes the most cookies, and the longest Cookie field, a request
// carried back.
type cookieFlood struct {
	srv         *httptest.Server
	set         atomic.Int64
	mu          sync.Mutex
	most, bytes int
}

func newCookieFlood(t *testing.T, perResponse, valueLen int) *cookieFlood {
	t.Helper()
	f := &cookieFlood{}
	value := strings.Repeat("v", valueLen)
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.most = max(f.most, len(r.Cookies()))
		f.bytes = max(f.bytes, len(r.Header.Get("Cookie")))
		f.mu.Unlock()
		for range perResponse {
			w.Header().Add("Set-Cookie", fmt.Sprintf("c%d=%s; Path=/", f.set.Add(1), value))
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// floodTest is a journey of 60 requests to the flood, users arriving
// 10 a second for 500ms, with the scenario's cookieJar (yaml) if any.
func floodTest(t *testing.T, base, jar string) *Test {
	t.Helper()
	return loadScenarioFile(t, t.TempDir(), `kind: Scenario
version: relia/v1
metadata: {name: flood}
spec:
  baseURL: `+base+`
`+jar+`  journeys:
    - name: flooded
      steps:
        - loop: 60
          steps:
            - request: {name: page, path: /}
  load: {rate: 10, duration: 500ms, lateAfter: 1s}
`)
}

// TestCookieJarBoundsAHostileTarget: a target sets 3,000 cookies on each
// user (50 a response); each user keeps the default 100 and sends no
// more, every other cookie is dropped and counted, and the journeys
// still succeed. A scenario raises the count, and its byte bound holds
// against cookies of 1,000 bytes. Before the jar had bounds, each user
// sent all 3,000 back.
func TestCookieJarBoundsAHostileTarget(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name               string
		perResponse, value int
		jar                string
		keep, maxBytes     int
	}{
		{"default count", 50, 10, "", DefaultMaxCookies, DefaultMaxCookieBytes},
		{"raised count", 50, 10, "  cookieJar: {maxCookies: 500}\n", 500, DefaultMaxCookieBytes},
		{"byte bound", 20, 1000, "  cookieJar: {maxCookies: 1000, maxSize: 8KiB}\n", 8, 8 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			flood := newCookieFlood(t, c.perResponse, c.value)
			reg := prometheus.NewRegistry()
			res, err := floodTest(t, flood.srv.URL, c.jar).Run(context.Background(), RunOptions{Registerer: reg, KeepMetrics: true})
			if err != nil {
				t.Fatal(err)
			}
			if n, err := testutil.GatherAndCount(reg, "relia_load_cookies_dropped_total"); err != nil || n != 1 {
				t.Fatalf("relia_load_cookies_dropped_total: %d series, %v", n, err)
			}
			want := fmt.Sprintf("# HELP relia_load_cookies_dropped_total %s\n# TYPE relia_load_cookies_dropped_total counter\nrelia_load_cookies_dropped_total %d\n",
				"Cookies responses set that the users' jars did not keep: past the scenario's cookieJar bounds.", res.Journeys.CookiesDropped)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "relia_load_cookies_dropped_total"); err != nil {
				t.Errorf("the live count of dropped cookies is not the results': %v", err)
			}
			users := res.Journeys.All.Total()
			if users.Total != 5 || users.ByClass[0] != 5 {
				t.Fatalf("journeys %v: want 5 that succeed", users.ByClass)
			}
			flood.mu.Lock()
			most, bytes := flood.most, flood.bytes
			flood.mu.Unlock()
			if most != c.keep {
				t.Errorf("a request carried up to %d cookies, want the jar's bound, %d", most, c.keep)
			}
			if bytes > c.maxBytes {
				t.Errorf("a Cookie field of %d bytes, past the jar's %d", bytes, c.maxBytes)
			}
			if want := flood.set.Load() - 5*int64(c.keep); res.Journeys.CookiesDropped != want || want <= 0 {
				t.Errorf("%d cookies dropped, want %d (%d set, %d kept by each of 5 users)", res.Journeys.CookiesDropped, want, flood.set.Load(), c.keep)
			}
			var b strings.Builder
			if err := res.WriteSummary(&b, res.Judge()); err != nil {
				t.Fatal(err)
			}
			if want := fmt.Sprintf("%d cookies dropped", res.Journeys.CookiesDropped); !strings.Contains(b.String(), want) {
				t.Errorf("the summary should say %q:\n%s", want, b.String())
			}
		})
	}
}

// TestCookiesDroppedMergeAcrossSegments splits the flood in two: the
// parts' counts, read back from their results files, add up to the
// whole's, and so does their merge.
func TestCookiesDroppedMergeAcrossSegments(t *testing.T) {
	t.Parallel()
	flood := newCookieFlood(t, 50, 10)
	test := floodTest(t, flood.srv.URL, "")
	parts := runSegments(t, test, 2)
	var sum int64
	for i, p := range parts {
		if p.Journeys.CookiesDropped == 0 {
			t.Fatalf("segment %d: no cookies dropped read back from its results", i)
		}
		sum += p.Journeys.CookiesDropped
	}
	m, err := Merge(parts...)
	if err != nil {
		t.Fatal(err)
	}
	if want := flood.set.Load() - 5*DefaultMaxCookies; m.Journeys.CookiesDropped != sum || sum != want {
		t.Errorf("merged %d cookies dropped, parts %d, want %d", m.Journeys.CookiesDropped, sum, want)
	}
}

// TestCookieJarBookkeeping: a cookie set again replaces its old self
// within the bound, and one deleted (Max-Age<0 or Expires past) frees
// its room.
func TestCookieJarBookkeeping(t *testing.T) {
	t.Parallel()
	u, _ := url.Parse("http://shop.test/a/b")
	now := time.Unix(1_700_000_000, 0)
	j := newCookieJar(2, 1<<10)
	set := func(cs ...*http.Cookie) int { return j.set(u, cs, now) }
	if d := set(&http.Cookie{Name: "a", Value: "1"}, &http.Cookie{Name: "b", Value: "1"}, &http.Cookie{Name: "c", Value: "1"}); d != 1 {
		t.Fatalf("dropped %d of 3 into a jar of 2, want 1", d)
	}
	if d := set(&http.Cookie{Name: "a", Value: "2"}); d != 0 {
		t.Fatalf("replacing a: dropped %d", d)
	}
	if d := set(&http.Cookie{Name: "b", MaxAge: -1}, &http.Cookie{Name: "c", Value: "1"}); d != 0 {
		t.Fatalf("deleting b made no room for c: dropped %d", d)
	}
	if d := set(&http.Cookie{Name: "c", Expires: now.Add(-time.Hour)}, &http.Cookie{Name: "d", Value: strings.Repeat("x", 2<<10)}); d != 1 {
		t.Fatalf("a cookie past the byte bound: dropped %d, want 1", d)
	}
	var got []string
	for _, c := range j.Cookies(u) {
		got = append(got, c.Name+"="+c.Value)
	}
	if strings.Join(got, " ") != "a=2" || len(j.sizes) != 1 {
		t.Fatalf("jar holds %v (%d counted), want a=2", got, len(j.sizes))
	}
}
