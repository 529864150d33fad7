// Package promrw pushes time series to a Prometheus remote write
// endpoint (protocol 1.0: a protobuf WriteRequest, snappy-compressed), so
// that relia load's runs land in the user's own Prometheus, Mimir, Thanos
// or VictoriaMetrics.
//
//	c := &promrw.Client{URL: "http://127.0.0.1:9090/api/v1/write"}
//	err := c.Push(ctx, []promrw.Series{{
//		Labels:  []promrw.Label{{"__name__", "relia_load_requests_total"}, {"scenario", "checkout"}},
//		Samples: []promrw.Sample{{Value: 1200, Time: time.Now()}},
//	}})
package promrw
