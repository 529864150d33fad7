package capacity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxRangeResponse bounds what QueryTraffic reads from a server: a range
// of 11,000 points (Prometheus's own limit) is well under it.
const maxRangeResponse = 16 << 20

// QueryTraffic runs a PromQL range query (/api/v1/query_range) from from
// to to at step on the Prometheus server at baseURL (or any server that
// speaks its HTTP API) and returns its one series as a traffic curve, in
// offsets from from. The query must give exactly one series: sum() it.
// A nil hc means an http.Client with a 30-second timeout.
//
// The default query for a relia gateway is KEDAQuery(route, time.Minute),
// the same request rate the KEDA trigger reads.
func QueryTraffic(ctx context.Context, hc *http.Client, baseURL, query string, from, to time.Time, step time.Duration) (Traffic, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	if !to.After(from) || step <= 0 {
		return nil, fmt.Errorf("querying %s: want from before to and a positive step", baseURL)
	}
	u, err := url.Parse(strings.TrimRight(baseURL, "/") + "/api/v1/query_range")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("querying Prometheus: %q is not an http(s) URL", baseURL)
	}
	form := url.Values{
		"query": {query},
		"start": {strconv.FormatInt(from.Unix(), 10)},
		"end":   {strconv.FormatInt(to.Unix(), 10)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRangeResponse+1))
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus: reading the answer: %w", err)
	}
	if len(body) > maxRangeResponse {
		return nil, fmt.Errorf("querying Prometheus: the answer is over %d MiB", maxRangeResponse>>20)
	}
	tr, err := parseRange(body, from)
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus %s for %s: %w", baseURL, query, err)
	}
	return tr, nil
}

// parseRange reads a query_range answer with one series.
func parseRange(body []byte, from time.Time) (Traffic, error) {
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Values [][2]json.RawMessage `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("the answer is not Prometheus's JSON: %w", err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "matrix" {
		return nil, fmt.Errorf("want a matrix, got %q", r.Data.ResultType)
	}
	switch len(r.Data.Result) {
	case 0:
		return nil, errors.New("the query gave no series: is the gateway scraped?")
	case 1:
	default:
		return nil, fmt.Errorf("the query gave %d series; sum() them into one", len(r.Data.Result))
	}
	var tr Traffic
	for _, v := range r.Data.Result[0].Values {
		var ts float64
		var s string
		if err := json.Unmarshal(v[0], &ts); err != nil {
			return nil, fmt.Errorf("a sample's time: %w", err)
		}
		if err := json.Unmarshal(v[1], &s); err != nil {
			return nil, fmt.Errorf("a sample's value: %w", err)
		}
		val, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(val) || math.IsInf(val, 0) || val < 0 {
			continue // a rate over a counter reset or a gap: no point
		}
		at := time.Unix(0, int64(ts*1e9)).Sub(from)
		if at < 0 || (len(tr) > 0 && at < tr[len(tr)-1].At) {
			return nil, errors.New("samples out of order or before the range")
		}
		tr = append(tr, RatePoint{At: at, Rate: val})
	}
	if len(tr) == 0 {
		return nil, errors.New("the series has no values")
	}
	return tr, nil
}
