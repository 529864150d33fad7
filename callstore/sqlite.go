package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, so the binary stays static
)

type sqliteDialect struct{}

// openSQLite opens (creating) the SQLite file at path with write-ahead
// logging, so readers never wait for the writer, and synchronous=NORMAL,
// which in WAL mode keeps the database consistent through a crash and
// loses at most the last transactions on power loss. A busy timeout
// makes a writer wait for another process's lock rather than fail at
// once; past it the Writer spools.
func openSQLite(path string) (*sql.DB, dialect, error) {
	if path == "" {
		return nil, nil, fmt.Errorf("empty SQLite path")
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(2000)", "foreign_keys(on)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, nil, err
	}
	return db, sqliteDialect{}, nil
}

func (sqliteDialect) name() string { return "sqlite" }

func (sqliteDialect) rebind(q string) string { return q }

// like: SQLite's LIKE ignores ASCII case already.
func (sqliteDialect) like() string { return "LIKE" }

// lock: the transactions are IMMEDIATE (_txlock), so a writing
// transaction already holds SQLite's one write lock.
func (sqliteDialect) lock(context.Context, *sql.Tx, int64) error { return nil }

func (sqliteDialect) schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS relia_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS calls (
			seq INTEGER PRIMARY KEY AUTOINCREMENT,
			time_ns INTEGER NOT NULL, request_id TEXT NOT NULL, trace_id TEXT NOT NULL, gateway TEXT NOT NULL,
			route TEXT NOT NULL, api TEXT NOT NULL, api_version TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
			method TEXT NOT NULL, path_template TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
			outcome TEXT NOT NULL, reason TEXT NOT NULL, latency_ns INTEGER NOT NULL, upstream_ns INTEGER NOT NULL,
			ttfb_ns INTEGER NOT NULL, target TEXT NOT NULL, attempts INTEGER NOT NULL, bytes_in INTEGER NOT NULL,
			bytes_out INTEGER NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, input_tokens INTEGER NOT NULL,
			output_tokens INTEGER NOT NULL, cost REAL NOT NULL, detail TEXT)`,
		`CREATE INDEX IF NOT EXISTS calls_time ON calls (time_ns)`,
		`CREATE INDEX IF NOT EXISTS calls_request_id ON calls (request_id)`,
		`CREATE INDEX IF NOT EXISTS calls_trace_id ON calls (trace_id) WHERE trace_id != ''`,
		`CREATE TABLE IF NOT EXISTS call_rollups (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			resolution INTEGER NOT NULL, bucket INTEGER NOT NULL,
			route TEXT NOT NULL, api TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL,
			calls INTEGER NOT NULL, failed INTEGER NOT NULL, rejected INTEGER NOT NULL,
			status_4xx INTEGER NOT NULL, status_5xx INTEGER NOT NULL,
			latency_sum_ns INTEGER NOT NULL, upstream_sum_ns INTEGER NOT NULL,
			bytes_in INTEGER NOT NULL, bytes_out INTEGER NOT NULL,
			input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost REAL NOT NULL,
			latency_hist BLOB NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS call_rollups_bucket ON call_rollups (resolution, bucket)`,
		`CREATE TABLE IF NOT EXISTS audit_log (
			seq INTEGER PRIMARY KEY AUTOINCREMENT,
			time_ns INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
			tenant TEXT NOT NULL, api TEXT NOT NULL, detail TEXT NOT NULL)`,
		`CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
			BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`,
		`CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
			BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END`,
		`CREATE TABLE IF NOT EXISTS subscriptions (
			tenant TEXT NOT NULL, api TEXT NOT NULL, state TEXT NOT NULL,
			requested_at_ns INTEGER NOT NULL, decided_at_ns INTEGER NOT NULL,
			decided_by TEXT NOT NULL, note TEXT NOT NULL,
			PRIMARY KEY (tenant, api))`,
	}
}

// write runs one prepared statement per row: with SQLite in process, a
// statement costs a function call, not a round trip.
func (sqliteDialect) write(ctx context.Context, db *sql.DB, recs []Record, rollups []rollupRow) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := sqliteInsertCalls(ctx, tx, recs); err != nil {
		return err
	}
	if err := sqliteInsertRollups(ctx, tx, rollups); err != nil {
		return err
	}
	return tx.Commit()
}

func sqliteInsertCalls(ctx context.Context, tx *sql.Tx, recs []Record) error {
	st, err := tx.PrepareContext(ctx, insertStatement("calls", callColumns))
	if err != nil {
		return err
	}
	defer st.Close()
	args := make([]any, 0, len(callColumns))
	for i := range recs {
		if args, err = callArgs(args[:0], &recs[i]); err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

func sqliteInsertRollups(ctx context.Context, tx *sql.Tx, rows []rollupRow) error {
	st, err := tx.PrepareContext(ctx, insertStatement("call_rollups", rollupColumns))
	if err != nil {
		return err
	}
	defer st.Close()
	args := make([]any, 0, len(rollupColumns))
	for i := range rows {
		if args, err = rollupArgs(args[:0], &rows[i]); err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// insertStatement is "INSERT INTO table (a, b) VALUES (?, ?)".
func insertStatement(table string, cols []string) string {
	return "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
}
