package shop

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkCatalogGet measures one catalog replica's GET /products/{id}
// over loopback HTTP/1.1 with keep-alive, from parallel clients, without
// artificial latency: the ceiling of the demo's catalog, for sizing it.
//
//	go test -run '^$' -bench CatalogGet -benchtime 2s ./internal/shop/
func BenchmarkCatalogGet(b *testing.B) {
	s, err := Start(context.Background(), Options{CatalogReplicas: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	base := s.Catalog(0).URL() + "/products/"
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			resp, err := c.Get(base + strconv.Itoa(1+i%NumProducts))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
