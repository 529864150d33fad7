package cache_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/cache"
)

// An upstream answer with max-age and stale-if-error is served fresh for
// its lifetime, then, past it, only when the upstream fails.
func ExampleCache_Lookup() {
	clk := clock.NewFake(time.Time{})
	c, err := cache.New(cache.Settings{MaxBytes: 16 << 20, Clock: clk})
	if err != nil {
		fmt.Println(err)
		return
	}
	key := cache.Key{Method: "GET", Host: "shop.example", Target: "/catalog"}
	req := http.Header{}
	resp := http.Header{"Cache-Control": {"max-age=60, stale-if-error=600"}}
	fmt.Println("stored:", c.Store(key, req, 200, resp, []byte(`["tea","cake"]`)))

	clk.Advance(30 * time.Second)
	e, fresh, staleOK := c.Lookup(key, req)
	fmt.Println("after 30s:", fresh, staleOK, "Age:", cache.AgeHeader(e.Age(clk.Now())))

	clk.Advance(5 * time.Minute)
	e, fresh, staleOK = c.Lookup(key, req)
	fmt.Println("after 5m30s:", fresh, staleOK, string(e.Body))
	// Output:
	// stored: true
	// after 30s: true false Age: 30
	// after 5m30s: false true ["tea","cake"]
}

func ExampleParseCacheControl() {
	d := cache.ParseCacheControl(`public, max-age=300, stale-if-error="86400"`)
	fmt.Println(d.Public, d.MaxAge, d.StaleIfError, d.SMaxAge == cache.Absent)
	// Output: true 300 86400 true
}
