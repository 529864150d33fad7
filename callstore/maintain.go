package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/relia-dev/relia/clock"
)

// compactLookback is how far back Maintain merges rollup rows: the
// buckets the writers have been adding partial rows to. Rows older than
// that (a spool replayed after a long outage) stay as they are until a
// full Compact; queries add them up all the same.
const compactLookback = 3 * time.Hour

// MaintainResult says what Maintain did.
type MaintainResult struct {
	// DeletedSegments and DeletedRollups count rows past their
	// retention: segments of calls (a batch each) and rollups.
	DeletedSegments, DeletedRollups int64
	// MergedRollups counts rollup rows merged into others.
	MergedRollups int64
}

// Maintain applies the retention (deleting raw calls and rollups past
// their age) and compacts the recent rollups. The Writer calls it on a
// schedule; gateways sharing a PostgreSQL database may all call it, one
// at a time by a lock.
func (s *DB) Maintain(ctx context.Context, r Retention) (MaintainResult, error) {
	r = r.withDefaults()
	now := s.clock.Now()
	var res MaintainResult
	del := func(stmt string, arg int64) (int64, error) {
		out, err := s.db.ExecContext(ctx, s.dialect.rebind(stmt), arg)
		if err != nil {
			return 0, fmt.Errorf("applying retention: %w", err)
		}
		n, _ := out.RowsAffected()
		return n, nil
	}
	var err error
	if res.DeletedSegments, err = del(`DELETE FROM call_segments WHERE max_time_ns < ?`, now.Add(-r.Calls).UnixNano()); err != nil {
		return res, err
	}
	for _, c := range []struct {
		res time.Duration
		age time.Duration
	}{{Minute, r.Minutes}, {Hour, r.Hours}} {
		n, err := del(fmt.Sprintf(`DELETE FROM call_rollups WHERE resolution = %d AND bucket < ?`, int64(c.res/time.Second)), now.Add(-c.age).Unix())
		if err != nil {
			return res, err
		}
		res.DeletedRollups += n
	}
	res.MergedRollups, err = s.Compact(ctx, now.Add(-compactLookback))
	return res, err
}

// Compact merges the rollup rows of each group and bucket from since on
// (all of them when since is zero) into one row, so that queries over
// long ranges read one row per group and bucket however many batches
// wrote to it. It returns how many rows went away.
func (s *DB) Compact(ctx context.Context, since time.Time) (int64, error) {
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	var merged int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.dialect.lock(ctx, tx, lockCompact); err != nil {
			return err
		}
		var sinceSec int64
		if !since.IsZero() {
			sinceSec = since.Truncate(Hour).Unix()
		}
		rows, err := tx.QueryContext(ctx, s.dialect.rebind(`SELECT id, resolution, bucket, route, api, tenant, key_id, model, calls, failed, rejected,
			status_4xx, status_5xx, latency_sum_ns, upstream_sum_ns, bytes_in, bytes_out, input_tokens, output_tokens, cost, latency_hist
			FROM call_rollups WHERE bucket >= ?`), sinceSec)
		if err != nil {
			return err
		}
		type group struct {
			ids []int64
			row rollupRow
		}
		groups := map[rollupKey]*group{}
		for rows.Next() {
			var (
				id, resSec, bucket, lat, up int64
				blob                        []byte
				r                           rollupRow
			)
			if err := rows.Scan(&id, &resSec, &bucket, &r.Key.Route, &r.Key.API, &r.Key.Tenant, &r.Key.KeyID, &r.Key.Model,
				&r.Calls, &r.Failed, &r.Rejected, &r.Status4xx, &r.Status5xx, &lat, &up,
				&r.BytesIn, &r.BytesOut, &r.InputTokens, &r.OutputTokens, &r.Cost, &blob); err != nil {
				rows.Close()
				return err
			}
			r.LatencySum, r.UpstreamSum = time.Duration(lat), time.Duration(up)
			r.resolution, r.bucket = time.Duration(resSec)*time.Second, time.Unix(bucket, 0).UTC()
			k := rollupKey{r.resolution, bucket, r.Key}
			g := groups[k]
			if g == nil {
				g = &group{row: rollupRow{resolution: r.resolution, bucket: r.bucket, Aggregate: Aggregate{Time: r.bucket, Key: r.Key}}}
				groups[k] = g
			}
			g.ids = append(g.ids, id)
			g.row.mergeCounts(&r.Aggregate)
			if err := g.row.Latency.MergeBinary(blob); err != nil {
				rows.Close()
				return fmt.Errorf("rollup row %d: %w", id, err)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var (
			ids    []int64
			insert []rollupRow
		)
		for _, g := range groups {
			if len(g.ids) > 1 {
				ids = append(ids, g.ids...)
				insert = append(insert, g.row)
			}
		}
		if len(insert) == 0 {
			return nil
		}
		for len(ids) > 0 {
			n := min(len(ids), 500)
			args := make([]any, n)
			for i, id := range ids[:n] {
				args[i] = id
			}
			stmt := "DELETE FROM call_rollups WHERE id IN (" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
			if _, err := tx.ExecContext(ctx, s.dialect.rebind(stmt), args...); err != nil {
				return err
			}
			ids = ids[n:]
		}
		if err := s.insertRows(ctx, tx, "call_rollups", rollupColumns, len(insert), func(i int, args []any) ([]any, error) {
			return rollupArgs(args, &insert[i])
		}); err != nil {
			return err
		}
		for _, g := range groups {
			if len(g.ids) > 1 {
				merged += int64(len(g.ids) - 1)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compacting rollups: %w", err)
	}
	return merged, nil
}

// Maintainer is a store that applies retention: a DB.
type Maintainer interface {
	Maintain(ctx context.Context, r Retention) (MaintainResult, error)
}

// RunMaintenance calls m.Maintain every interval (a minute when 0) on
// clk until ctx ends, logging failures; the gateway runs it beside its
// Writer.
func RunMaintenance(ctx context.Context, m Maintainer, r Retention, every time.Duration, clk clock.Clock, log *slog.Logger) {
	if every <= 0 {
		every = time.Minute
	}
	clk = clock.OrReal(clk)
	if log == nil {
		log = slog.Default()
	}
	for {
		if err := clock.Sleep(ctx, clk, every); err != nil {
			return
		}
		res, err := m.Maintain(ctx, r)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("call store maintenance failed", "err", err)
			}
			continue
		}
		if res.DeletedSegments+res.DeletedRollups > 0 {
			log.Info("call store retention applied", "deleted_segments", res.DeletedSegments, "deleted_rollups", res.DeletedRollups, "merged_rollups", res.MergedRollups)
		}
	}
}
