package cache_test

import (
	"testing"

	"github.com/relia-dev/relia/gateway/cache"
)

func TestParseCacheControl(t *testing.T) {
	t.Parallel()
	none := cache.ParseCacheControl("")
	with := func(edit func(*cache.Directives)) cache.Directives {
		d := none
		edit(&d)
		return d
	}
	tests := []struct {
		in   string
		want cache.Directives
	}{
		{"", none},
		{"max-age=60", with(func(d *cache.Directives) { d.MaxAge = 60 })},
		{"MAX-AGE = 60 , Public", with(func(d *cache.Directives) { d.MaxAge = 60; d.Public = true })},
		{`max-age="30"`, with(func(d *cache.Directives) { d.MaxAge = 30 })},
		{"max-age=abc", with(func(d *cache.Directives) { d.MaxAge = 0 })},
		{"max-age", with(func(d *cache.Directives) { d.MaxAge = 0 })},
		{"max-age=10, max-age=20", with(func(d *cache.Directives) { d.MaxAge = 10 })},
		{"max-age=99999999999999999999", with(func(d *cache.Directives) { d.MaxAge = cache.MaxDelta })},
		{"s-maxage=5, stale-if-error=300, stale-while-revalidate=30", with(func(d *cache.Directives) {
			d.SMaxAge, d.StaleIfError, d.StaleWhileRevalidate = 5, 300, 30
		})},
		{"stale-if-error=soon", none},
		{`private="Set-Cookie, X-Token", max-age=5`, with(func(d *cache.Directives) { d.Private = true; d.MaxAge = 5 })},
		{`no-cache="a\"b,c", no-store`, with(func(d *cache.Directives) { d.NoCache = true; d.NoStore = true })},
		{"must-revalidate,proxy-revalidate,no-transform,only-if-cached,immutable", with(func(d *cache.Directives) {
			d.MustRevalidate, d.ProxyRevalidate, d.NoTransform, d.OnlyIfCached, d.Immutable = true, true, true, true, true
		})},
		{"max-stale", with(func(d *cache.Directives) { d.MaxStale = cache.MaxDelta })},
		{"max-stale=7, min-fresh=3", with(func(d *cache.Directives) { d.MaxStale, d.MinFresh = 7, 3 })},
		{",,, ,x-unknown=1,  max-age=1,", with(func(d *cache.Directives) { d.MaxAge = 1 })},
		{`x="unterminated, max-age=5`, none},
	}
	for _, tt := range tests {
		if got := cache.ParseCacheControl(tt.in); got != tt.want {
			t.Errorf("ParseCacheControl(%q) =\n %+v, want\n %+v", tt.in, got, tt.want)
		}
	}
	d := cache.ParseCacheControl("public, max-age=60, stale-if-error=300")
	if got, want := d.String(), "public, max-age=60, stale-if-error=300"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func FuzzParseCacheControl(f *testing.F) {
	for _, s := range []string{
		"max-age=60, public", `private="Set-Cookie", s-maxage=5`, "max-stale", `no-cache="a\"b`,
		"stale-if-error=99999999999999999999999", "MAX-AGE=1,max-age=2", ", = ,=,\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := cache.ParseCacheControl(s)
		for _, v := range []int64{d.MaxAge, d.SMaxAge, d.MaxStale, d.MinFresh, d.StaleIfError, d.StaleWhileRevalidate} {
			if v < cache.Absent || v > cache.MaxDelta {
				t.Fatalf("ParseCacheControl(%q) has a delta %d out of range: %+v", s, v, d)
			}
		}
		// What the parser read, written back, reads the same.
		if back := cache.ParseCacheControl(d.String()); back != d {
			t.Fatalf("round trip of %q: %+v, then %q reads %+v", s, d, d.String(), back)
		}
	})
}
