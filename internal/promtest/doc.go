// Package promtest starts a real Prometheus (Debian's prometheus
// package) for tests, on a loopback port of its own:
//
//	url := promtest.Start(t, "global: {scrape_interval: 15s}\n", "--web.enable-remote-write-receiver")
//	// POST to url + "/api/v1/write", query url + "/api/v1/query"
//
// It is Linux-only (the kernel kills the server if the test binary dies).
package promtest
