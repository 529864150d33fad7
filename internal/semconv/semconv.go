package semconv

import "slices"

// Names of the latency histograms relia exports, OpenTelemetry's HTTP
// semantic conventions written as Prometheus names where one applies,
// relia_ names for relia's own.
const (
	// HTTPServerRequestDuration is the duration of inbound HTTP requests
	// (OpenTelemetry http.server.request.duration), from the gateway and
	// the demo shop.
	HTTPServerRequestDuration = "http_server_request_duration_seconds"
	// HTTPClientRequestDuration is the duration of outbound HTTP requests
	// (OpenTelemetry http.client.request.duration), from the gateway's
	// upstream attempts and the load generator.
	HTTPClientRequestDuration = "http_client_request_duration_seconds"
	// LoadServiceDuration is the load generator's service time, from the
	// actual send to the end of the response.
	LoadServiceDuration = "relia_load_service_duration_seconds"
)

// durationBuckets are the default upper bounds, in seconds, of every
// latency histogram relia exports: OpenTelemetry's advisory boundaries
// for HTTP durations plus 0.2, 0.3 and 2, so that latency SLOs at the
// thresholds SLOs are most often written at (relia's own demo promises
// 200 ms) fall on a bucket bound. A classic histogram cannot tell how
// many requests took under a value between two of its bounds, so an SLO
// threshold must be one of them.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.25, 0.3, 0.5, 0.75, 1, 2, 2.5, 5, 7.5, 10}

// DurationBuckets returns a copy of the default bucket bounds of relia's
// latency histograms, ascending.
func DurationBuckets() []float64 { return slices.Clone(durationBuckets) }

// histograms are the latency histograms relia exports.
var histograms = []string{HTTPServerRequestDuration, HTTPClientRequestDuration, LoadServiceDuration}

// Buckets returns the default bucket bounds of the latency histogram
// relia exports under name, and whether relia exports one by that name.
func Buckets(name string) ([]float64, bool) {
	if !slices.Contains(histograms, name) {
		return nil, false
	}
	return DurationBuckets(), true
}
