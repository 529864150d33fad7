package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Write stores a batch of calls as one segment and adds them to the
// per-minute and per-hour rollups, in one transaction: a failed Write
// leaves nothing behind, so the Writer can try the batch again.
//
// The batch's Seqs are taken from a counter row that the transaction
// holds until it commits, so writers sharing a database take turns and
// Seq order is commit order.
func (s *DB) Write(ctx context.Context, recs []Record) error { return s.write(ctx, recs, nil) }

// writeFramed is Write for a Writer's batch: recs were decoded from
// framed without copying their strings, and framed becomes the segment's
// records as it is. It is what makes a DB a framedSink.
func (s *DB) writeFramed(ctx context.Context, framed []byte, recs []Record) error {
	return s.write(ctx, recs, framed)
}

var _ framedSink = (*DB)(nil)

func (s *DB) write(ctx context.Context, recs []Record, framed []byte) error {
	if len(recs) == 0 {
		return nil
	}
	seg := buildSegment(recs, framed)
	defer releaseCompressed(seg.records)
	rollups := rollupBatch(recs)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var first int64
		if err := tx.QueryRowContext(ctx, s.dialect.rebind(`UPDATE relia_meta SET value = value + ? WHERE name = 'next_seq' RETURNING value - ?`),
			seg.n, seg.n).Scan(&first); err != nil {
			return fmt.Errorf("taking sequence numbers: %w", err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(insertStatement("call_segments", segmentColumns, 1)),
			first, seg.n, seg.minTime, seg.maxTime, seg.sets[setGateway], seg.sets[setRoute], seg.sets[setAPI],
			seg.sets[setTenant], seg.sets[setKey], seg.sets[setModel], seg.failed, []byte(seg.ids), seg.records); err != nil {
			return err
		}
		return s.insertRows(ctx, tx, "call_rollups", rollupColumns, len(rollups), func(i int, args []any) ([]any, error) {
			return rollupArgs(args, &rollups[i])
		})
	})
	if err != nil {
		return fmt.Errorf("writing %d calls to %s: %w", len(recs), s.dialect.name(), err)
	}
	return nil
}

// maxRowsPerStatement bounds a multi-row INSERT within both databases'
// parameter limits (SQLite 32,766, PostgreSQL 65,535) for tables of up
// to 60 columns.
const maxRowsPerStatement = 500

// insertRows inserts n rows into table, as few statements as the
// parameter limits allow; args appends row i's values.
func (s *DB) insertRows(ctx context.Context, tx *sql.Tx, table string, cols []string, n int, args func(i int, args []any) ([]any, error)) error {
	var vals []any
	for at := 0; at < n; {
		k := min(n-at, maxRowsPerStatement)
		vals = vals[:0]
		for i := at; i < at+k; i++ {
			var err error
			if vals, err = args(i, vals); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(insertStatement(table, cols, k)), vals...); err != nil {
			return err
		}
		at += k
	}
	return nil
}

// insertStatement is "INSERT INTO table (a, b) VALUES (?, ?), (?, ?)" for
// rows rows.
func insertStatement(table string, cols []string, rows int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
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
// group (route, API, tenant, key, model) per minute and per hour. A call
// of the same group and minute as the call before it (as most calls of
// a batch are) goes to that call's rows without a map lookup.
func rollupBatch(recs []Record) []rollupRow {
	idx := make(map[rollupKey]int, 16)
	var rows []rollupRow
	row := func(res time.Duration, b time.Time, k Key) int {
		rk := rollupKey{res, b.Unix(), k}
		j, ok := idx[rk]
		if !ok {
			j = len(rows)
			idx[rk] = j
			rows = append(rows, rollupRow{resolution: res, bucket: b, Aggregate: Aggregate{Time: b, Key: k}})
		}
		return j
	}
	minute, hour := -1, -1
	for i := range recs {
		r := &recs[i]
		k := Key{Route: r.Route, API: r.API, Tenant: r.Tenant, KeyID: r.KeyID, Model: r.Model}
		b := r.Time.Truncate(Minute)
		if minute < 0 || rows[minute].Key != k || !rows[minute].bucket.Equal(b) {
			minute, hour = row(Minute, b, k), row(Hour, b.Truncate(Hour), k)
		}
		rows[minute].add(r)
		rows[hour].add(r)
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
