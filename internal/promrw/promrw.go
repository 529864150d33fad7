package promrw

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"
)

// Label is one label of a series.
type Label struct{ Name, Value string }

// Sample is one value of a series at a time.
type Sample struct {
	Value float64
	Time  time.Time
}

// Series is one time series: its labels (with __name__, the metric's
// name) and its samples in time order.
type Series struct {
	Labels  []Label
	Samples []Sample
}

// MaxSeriesPerRequest bounds the series of one write request, so that a
// long run's push is a few requests of moderate size, not one huge one.
const MaxSeriesPerRequest = 500

// Encode writes series as a remote write 1.0 WriteRequest in protobuf,
// each series' labels sorted by name as the protocol asks.
func Encode(series []Series) []byte {
	var out, ts, lb []byte
	for _, s := range series {
		ts = ts[:0]
		labels := slices.Clone(s.Labels)
		slices.SortFunc(labels, func(a, b Label) int { return strings.Compare(a.Name, b.Name) })
		for _, l := range labels {
			lb = lb[:0]
			lb = protowire.AppendTag(lb, 1, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Name)
			lb = protowire.AppendTag(lb, 2, protowire.BytesType)
			lb = protowire.AppendString(lb, l.Value)
			ts = protowire.AppendTag(ts, 1, protowire.BytesType)
			ts = protowire.AppendBytes(ts, lb)
		}
		for _, p := range s.Samples {
			lb = lb[:0]
			lb = protowire.AppendTag(lb, 1, protowire.Fixed64Type)
			lb = protowire.AppendFixed64(lb, math.Float64bits(p.Value))
			lb = protowire.AppendTag(lb, 2, protowire.VarintType)
			lb = protowire.AppendVarint(lb, uint64(p.Time.UnixMilli()))
			ts = protowire.AppendTag(ts, 2, protowire.BytesType)
			ts = protowire.AppendBytes(ts, lb)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, ts)
	}
	return out
}

// Client pushes series to a remote write endpoint, such as Prometheus
// started with --web.enable-remote-write-receiver
// (http://127.0.0.1:9090/api/v1/write).
type Client struct {
	// URL is the endpoint.
	URL string
	// HTTP sends the requests; nil means a client with a 30s timeout.
	HTTP *http.Client
	// Headers are added to every request (an Authorization, a tenant).
	Headers map[string]string
}

// Push sends series in requests of at most MaxSeriesPerRequest series.
// A 4xx answer is an error at once (the data is refused, sending it again
// would not help); so is any other failure.
func (c *Client) Push(ctx context.Context, series []Series) error {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	for chunk := range slices.Chunk(series, MaxSeriesPerRequest) {
		body := snappy.Encode(nil, Encode(chunk))
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("remote write to %s: %w", c.URL, err)
		}
		req.Header.Set("Content-Encoding", "snappy")
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
		req.Header.Set("User-Agent", "relia")
		for k, v := range c.Headers {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("remote write to %s: %w", c.URL, err)
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("remote write to %s: %s: %s", c.URL, resp.Status, strings.TrimSpace(string(msg)))
		}
	}
	return nil
}

// ValidLabelName reports whether name is a Prometheus label name.
func ValidLabelName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// CheckURL checks that u is an http or https URL, as a flag's value.
func CheckURL(u string) error {
	if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		return fmt.Errorf("%q: want an http:// or https:// URL", u)
	}
	return nil
}
