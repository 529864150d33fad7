package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// where builds a WHERE clause from conditions with ? placeholders.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) eq(col, v string) {
	if v != "" {
		w.add(col+" = ?", v)
	}
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// likePattern is %s% with LIKE's wildcards in s escaped by a backslash.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(s) + "%"
}

// Calls returns the stored calls that match q (see Querier): newest
// first by Seq (the order they were stored in), or oldest first after
// q.AfterSeq.
func (s *DB) Calls(ctx context.Context, q Query) ([]Record, error) {
	var out []Record
	limit := q.limit()
	err := s.scan(ctx, q, func(r *Record) bool {
		out = append(out, *r)
		return len(out) < limit
	})
	return out, err
}

// Count returns how many stored calls match q (its Limit aside), for
// checks that no call was lost.
func (s *DB) Count(ctx context.Context, q Query) (int64, error) {
	if q == (Query{}) {
		var n int64
		if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(n), 0) FROM call_segments`).Scan(&n); err != nil {
			return 0, fmt.Errorf("counting calls: %w", err)
		}
		return n, nil
	}
	var n int64
	err := s.scan(ctx, q, func(*Record) bool { n++; return true })
	return n, err
}

// segmentsPerPage is how many segments a scan reads per query.
const segmentsPerPage = 8

// scan calls f with each stored call that matches q, newest first (oldest
// first after q.AfterSeq), until f returns false. Segments that cannot
// hold a match (by time, by the sets of values they hold, by their count
// of failures, by their Bloom filter of ids) are not read.
func (s *DB) scan(ctx context.Context, q Query, f func(r *Record) bool) error {
	lo, hi, err := q.statusRange()
	if err != nil {
		return err
	}
	var w where
	if !q.From.IsZero() {
		w.add("max_time_ns >= ?", q.From.UnixNano())
	}
	if !q.To.IsZero() {
		w.add("min_time_ns < ?", q.To.UnixNano())
	}
	for d, v := range [numSetDims]string{q.Gateway, q.Route, q.API, q.Tenant, q.KeyID, q.Model} {
		if v != "" {
			w.add("("+setColumns[d]+" = '"+setAny+"' OR "+s.dialect.contains(setColumns[d])+")", setNeedle(v))
		}
	}
	if q.Failed {
		w.add("failed > 0")
	}
	asc := q.AfterSeq > 0
	if asc {
		w.add("first_seq + n > ?", q.AfterSeq+1)
	}
	byID := q.RequestID != "" || q.TraceID != ""
	cols, page := "first_seq, records", segmentsPerPage
	if byID {
		// Read the filters first, and the records of the segments they
		// let through.
		cols, page = "first_seq, ids", 512
	}
	order := " ORDER BY first_seq DESC"
	cursorCond := "first_seq < ?"
	if asc {
		order, cursorCond = " ORDER BY first_seq", "first_seq > ?"
	}
	var cursor int64 = -1
	var rec Record
	for {
		pw := w
		pw.conds = append([]string(nil), w.conds...)
		pw.args = append([]any(nil), w.args...)
		if cursor >= 0 {
			pw.add(cursorCond, cursor)
		}
		stmt := "SELECT " + cols + " FROM call_segments" + pw.String() + order + " LIMIT " + fmt.Sprint(page)
		rows, err := s.db.QueryContext(ctx, s.dialect.rebind(stmt), pw.args...)
		if err != nil {
			return fmt.Errorf("querying calls: %w", err)
		}
		type seg struct {
			first int64
			data  []byte
		}
		var segs []seg
		for rows.Next() {
			var sg seg
			if err := rows.Scan(&sg.first, &sg.data); err != nil {
				rows.Close()
				return fmt.Errorf("reading calls: %w", err)
			}
			segs = append(segs, sg)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading calls: %w", err)
		}
		for _, sg := range segs {
			cursor = sg.first
			records := sg.data
			if byID {
				bl := bloom(sg.data)
				if q.RequestID != "" && !bl.mayHave(q.RequestID) || q.TraceID != "" && !bl.mayHave(q.TraceID) {
					continue
				}
				if err := s.db.QueryRowContext(ctx, s.dialect.rebind(`SELECT records FROM call_segments WHERE first_seq = ?`), sg.first).Scan(&records); err != nil {
					return fmt.Errorf("reading calls: %w", err)
				}
			}
			records, err := decompressRecords(records)
			if err != nil {
				return fmt.Errorf("reading the calls of segment %d: %w", sg.first, err)
			}
			var offs [][]byte
			if err := forEachFramed(records, func(_ int, b []byte) bool { offs = append(offs, b); return true }); err != nil {
				return fmt.Errorf("reading the calls of segment %d: %w", sg.first, err)
			}
			for k := range offs {
				i := k
				if !asc {
					i = len(offs) - 1 - k
				}
				seq := sg.first + int64(i)
				if asc && seq <= q.AfterSeq {
					continue
				}
				if err := decodeRecord(offs[i], &rec); err != nil {
					return fmt.Errorf("reading call %d: %w", seq, err)
				}
				rec.Seq = seq
				if q.matches(&rec, lo, hi) && !f(&rec) {
					return nil
				}
			}
		}
		if len(segs) < page {
			return nil
		}
	}
}

// resolution returns the rollup resolution q is answered from and its
// range rounded down to it: hours when the step is whole hours, or when
// the whole range is (a day's totals), so that long ranges read few rows;
// minutes otherwise.
func (q *AggregateQuery) resolution(now time.Time) (res time.Duration, from, to time.Time, err error) {
	to = q.To
	if to.IsZero() {
		to = now
	}
	if q.Step < 0 || q.Step > 0 && q.Step%Minute != 0 {
		return 0, from, to, fmt.Errorf("%w: step %s is not a whole number of minutes", ErrBadQuery, q.Step)
	}
	if q.From.IsZero() {
		return 0, from, to, fmt.Errorf("%w: an aggregate needs the start of its range", ErrBadQuery)
	}
	hourly := q.Step >= Hour && q.Step%Hour == 0 ||
		q.Step == 0 && q.From.Equal(q.From.Truncate(Hour)) && to.Equal(to.Truncate(Hour))
	res = Minute
	if hourly {
		res = Hour
	}
	from, to = q.From.Truncate(res), to.Truncate(res)
	if !to.After(from) {
		return 0, from, to, fmt.Errorf("%w: the range %s to %s holds no whole %s", ErrBadQuery, q.From.Format(time.RFC3339), to.Format(time.RFC3339), res)
	}
	return res, from, to, nil
}

// bucketOf returns the start of the step that t falls in.
func (q *AggregateQuery) bucketOf(t, from time.Time) time.Time {
	if q.Step == 0 {
		return from
	}
	// time.Truncate counts from the zero time, a Monday at midnight UTC,
	// so days start at midnight and weeks on Monday.
	return t.Truncate(q.Step)
}

// Aggregate returns the rollups of the calls that match q, one per step
// and group, in time order and then by key (see Querier).
func (s *DB) Aggregate(ctx context.Context, q AggregateQuery) ([]Aggregate, error) {
	res, from, to, err := q.resolution(s.clock.Now())
	if err != nil {
		return nil, err
	}
	for _, d := range q.By {
		if _, err := ParseDimension(string(d)); err != nil {
			return nil, err
		}
	}
	var w where
	w.add("resolution = ?", int64(res/time.Second))
	w.add("bucket >= ?", from.Unix())
	w.add("bucket < ?", to.Unix())
	w.eq("route", q.Route)
	w.eq("api", q.API)
	w.eq("tenant", q.Tenant)
	w.eq("key_id", q.KeyID)
	w.eq("model", q.Model)
	stmt := "SELECT bucket, route, api, tenant, key_id, model, calls, failed, rejected, status_4xx, status_5xx, " +
		"latency_sum_ns, upstream_sum_ns, bytes_in, bytes_out, input_tokens, output_tokens, cost, latency_hist FROM call_rollups" + w.String()
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(stmt), w.args...)
	if err != nil {
		return nil, fmt.Errorf("querying rollups: %w", err)
	}
	defer rows.Close()
	type groupKey struct {
		t time.Time
		k Key
	}
	groups := map[groupKey]*Aggregate{}
	var (
		a    Aggregate
		blob []byte
	)
	for rows.Next() {
		if err := scanRollup(rows, &a, &blob); err != nil {
			return nil, err
		}
		gk := groupKey{q.bucketOf(a.Time, from), a.Key.project(q.By)}
		g := groups[gk]
		if g == nil {
			g = &Aggregate{Time: gk.t, Key: gk.k}
			groups[gk] = g
		}
		g.mergeCounts(&a)
		if err := g.Latency.MergeBinary(blob); err != nil {
			return nil, fmt.Errorf("reading rollups: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading rollups: %w", err)
	}
	out := make([]Aggregate, 0, len(groups))
	for _, g := range groups {
		out = append(out, *g)
	}
	sortAggregates(out)
	return out, nil
}

// scanRollup reads one rollup row into a, but for its latency
// histogram, whose binary form it leaves in blob for merging.
func scanRollup(rows *sql.Rows, a *Aggregate, blob *[]byte) error {
	var bucket, lat, up int64
	*a = Aggregate{}
	if err := rows.Scan(&bucket, &a.Key.Route, &a.Key.API, &a.Key.Tenant, &a.Key.KeyID, &a.Key.Model,
		&a.Calls, &a.Failed, &a.Rejected, &a.Status4xx, &a.Status5xx, &lat, &up,
		&a.BytesIn, &a.BytesOut, &a.InputTokens, &a.OutputTokens, &a.Cost, blob); err != nil {
		return fmt.Errorf("reading rollups: %w", err)
	}
	a.Time = time.Unix(bucket, 0).UTC()
	a.LatencySum, a.UpstreamSum = time.Duration(lat), time.Duration(up)
	return nil
}

// sortAggregates orders aggregates by time, then key.
func sortAggregates(as []Aggregate) {
	sort.Slice(as, func(i, j int) bool {
		if !as[i].Time.Equal(as[j].Time) {
			return as[i].Time.Before(as[j].Time)
		}
		return as[i].Key.String() < as[j].Key.String()
	})
}

// AppendAudit appends an entry to the audit log and returns it with its
// Seq (and its Time, when it had none: now).
func (s *DB) AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		e, err = s.appendAuditTx(ctx, tx, e)
		return err
	})
	return e, err
}

func (s *DB) appendAuditTx(ctx context.Context, tx *sql.Tx, e AuditEntry) (AuditEntry, error) {
	if e.Time.IsZero() {
		e.Time = s.clock.Now()
	}
	e.Time = e.Time.UTC()
	if e.Action == "" {
		return e, fmt.Errorf("appending to the audit log: an entry needs an action")
	}
	err := tx.QueryRowContext(ctx, s.dialect.rebind(
		`INSERT INTO audit_log (time_ns, actor, action, tenant, api, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING seq`),
		e.Time.UnixNano(), e.Actor, e.Action, e.Tenant, e.API, e.Detail).Scan(&e.Seq)
	if err != nil {
		return e, fmt.Errorf("appending to the audit log: %w", err)
	}
	return e, nil
}

// Audit returns the audit log entries that match q, oldest first (see
// Querier).
func (s *DB) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	var w where
	if !q.From.IsZero() {
		w.add("time_ns >= ?", q.From.UnixNano())
	}
	if !q.To.IsZero() {
		w.add("time_ns < ?", q.To.UnixNano())
	}
	w.eq("tenant", q.Tenant)
	w.eq("api", q.API)
	if strings.HasSuffix(q.Action, ".") {
		w.add("action LIKE ? ESCAPE '\\'", strings.TrimSuffix(likePattern(q.Action), "%")[1:]+"%")
	} else {
		w.eq("action", q.Action)
	}
	if q.AfterSeq > 0 {
		w.add("seq > ?", q.AfterSeq)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	// The latest entries, then put back in order.
	stmt := "SELECT seq, time_ns, actor, action, tenant, api, detail FROM audit_log" + w.String() + " ORDER BY seq DESC LIMIT ?"
	rows, err := s.db.QueryContext(ctx, s.dialect.rebind(stmt), append(w.args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("querying the audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var (
			e AuditEntry
			t int64
		)
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &e.Action, &e.Tenant, &e.API, &e.Detail); err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		e.Time = time.Unix(0, t).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Subscriptions returns every subscription, by tenant and API.
func (s *DB) Subscriptions(ctx context.Context) ([]Subscription, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, api, state, requested_at_ns, decided_at_ns, decided_by, note FROM subscriptions ORDER BY tenant, api`)
	if err != nil {
		return nil, fmt.Errorf("querying subscriptions: %w", err)
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		var (
			sub            Subscription
			requested, dec int64
		)
		if err := rows.Scan(&sub.Tenant, &sub.API, &sub.State, &requested, &dec, &sub.DecidedBy, &sub.Note); err != nil {
			return nil, fmt.Errorf("reading subscriptions: %w", err)
		}
		sub.RequestedAt = time.Unix(0, requested).UTC()
		if dec != 0 {
			sub.DecidedAt = time.Unix(0, dec).UTC()
		}
		out = append(out, sub)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading subscriptions: %w", err)
	}
	return out, nil
}

// PutSubscription creates or replaces the subscription of sub.Tenant to
// sub.API and appends the audit entry that says why, in one transaction:
// no change of access goes unrecorded.
func (s *DB) PutSubscription(ctx context.Context, sub Subscription, e AuditEntry) (AuditEntry, error) {
	var decided int64
	if !sub.DecidedAt.IsZero() {
		decided = sub.DecidedAt.UnixNano()
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO subscriptions (tenant, api, state, requested_at_ns, decided_at_ns, decided_by, note)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (tenant, api) DO UPDATE SET state = excluded.state, requested_at_ns = excluded.requested_at_ns,
				decided_at_ns = excluded.decided_at_ns, decided_by = excluded.decided_by, note = excluded.note`),
			sub.Tenant, sub.API, sub.State, sub.RequestedAt.UnixNano(), decided, sub.DecidedBy, sub.Note)
		if err != nil {
			return fmt.Errorf("writing subscription: %w", err)
		}
		e, err = s.appendAuditTx(ctx, tx, e)
		return err
	})
	return e, err
}
