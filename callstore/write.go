package callstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// Write stores a batch of calls and adds them to the per-minute and
// per-hour rollups, in one transaction: a failed Write leaves nothing
// behind, so the Writer can try the batch again.
func (s *DB) Write(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	rollups := rollupBatch(recs)
	if err := s.dialect.write(ctx, s.db, recs, rollups); err != nil {
		return fmt.Errorf("writing %d calls to %s: %w", len(recs), s.dialect.name(), err)
	}
	return nil
}

// callDetail is the part of a call kept as one JSON document: its story
// and, for routes that opt in, headers and bodies.
type callDetail struct {
	Steps           []Step   `json:"steps,omitempty"`
	RequestHeaders  []Header `json:"request_headers,omitempty"`
	ResponseHeaders []Header `json:"response_headers,omitempty"`
	RequestBody     string   `json:"request_body,omitempty"`
	ResponseBody    string   `json:"response_body,omitempty"`
}

// detailJSON returns r's detail document, or nil when it has none.
func detailJSON(r *Record) ([]byte, error) {
	if len(r.Steps) == 0 && len(r.RequestHeaders) == 0 && len(r.ResponseHeaders) == 0 && r.RequestBody == "" && r.ResponseBody == "" {
		return nil, nil
	}
	return json.Marshal(callDetail{r.Steps, r.RequestHeaders, r.ResponseHeaders, r.RequestBody, r.ResponseBody})
}

// callArgs appends r's column values, in callColumns' order, to args.
func callArgs(args []any, r *Record) ([]any, error) {
	detail, err := detailJSON(r)
	if err != nil {
		return args, err
	}
	var d any
	if detail != nil {
		d = string(detail)
	}
	return append(args,
		r.Time.UnixNano(), r.RequestID, r.TraceID, r.Gateway, r.Route, r.API, r.APIVersion, r.Tenant, r.KeyID,
		r.Method, r.PathTemplate, r.Path, r.Status, r.Outcome, r.Reason, int64(r.Latency), int64(r.Upstream), int64(r.TTFB),
		r.Target, r.Attempts, r.BytesIn, r.BytesOut, r.Model, r.Provider, r.InputTokens, r.OutputTokens, r.Cost, d,
	), nil
}

// rollupRow is one row of the rollups table: the aggregate of some calls
// of one group in one bucket. Rows of the same group and bucket may be
// many (each batch writes its own); queries add them up and Compact
// merges them into one.
type rollupRow struct {
	resolution time.Duration
	bucket     time.Time
	Aggregate
}

// rollupKey is a rollup row's identity.
type rollupKey struct {
	resolution time.Duration
	bucket     int64 // unix seconds
	key        Key
}

// rollupBatch aggregates a batch of calls into its rollup rows: one per
// group (route, API, tenant, key, model) per minute and per hour.
func rollupBatch(recs []Record) []rollupRow {
	idx := make(map[rollupKey]int, 16)
	var rows []rollupRow
	for i := range recs {
		r := &recs[i]
		k := Key{Route: r.Route, API: r.API, Tenant: r.Tenant, KeyID: r.KeyID, Model: r.Model}
		for _, res := range [...]time.Duration{Minute, Hour} {
			b := r.Time.Truncate(res)
			rk := rollupKey{res, b.Unix(), k}
			j, ok := idx[rk]
			if !ok {
				j = len(rows)
				idx[rk] = j
				rows = append(rows, rollupRow{resolution: res, bucket: b, Aggregate: Aggregate{Time: b, Key: k}})
			}
			rows[j].add(r)
		}
	}
	return rows
}

// rollupArgs appends the row's column values, in rollupColumns' order.
func rollupArgs(args []any, r *rollupRow) ([]any, error) {
	hist, err := r.Latency.AppendBinary(nil)
	if err != nil {
		return args, err
	}
	return append(args,
		int64(r.resolution/time.Second), r.bucket.Unix(), r.Key.Route, r.Key.API, r.Key.Tenant, r.Key.KeyID, r.Key.Model,
		r.Calls, r.Failed, r.Rejected, r.Status4xx, r.Status5xx, int64(r.LatencySum), int64(r.UpstreamSum),
		r.BytesIn, r.BytesOut, r.InputTokens, r.OutputTokens, r.Cost, hist,
	), nil
}
