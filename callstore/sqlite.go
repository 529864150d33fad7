package callstore

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, so the binary stays static
)

type sqliteDialect struct{}

// openSQLite opens (creating) the SQLite file at path with write-ahead
// logging, so readers never wait for the writer, and synchronous=NORMAL,
// which in WAL mode keeps the database consistent through a crash and
// loses at most the last transactions on power loss. A busy timeout
// makes a writer wait for another process's lock rather than fail at
// once; past it the Writer spools. Writing transactions take the write
// lock when they begin (IMMEDIATE), so two never deadlock upgrading.
func openSQLite(path string) (*sql.DB, dialect, error) {
	if path == "" {
		return nil, nil, fmt.Errorf("empty SQLite path")
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "busy_timeout(2000)", "cache_size(-65536)", "temp_store(memory)"} {
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

func (sqliteDialect) contains(col string) string { return "instr(" + col + ", ?) > 0" }

// lock: the transactions are IMMEDIATE (_txlock), so a writing
// transaction already holds SQLite's one write lock.
func (sqliteDialect) lock(context.Context, *sql.Tx, int64) error { return nil }

func (sqliteDialect) schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS relia_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS call_segments (
			first_seq INTEGER PRIMARY KEY, n INTEGER NOT NULL,
			min_time_ns INTEGER NOT NULL, max_time_ns INTEGER NOT NULL,
			gateways TEXT NOT NULL, routes TEXT NOT NULL, apis TEXT NOT NULL, tenants TEXT NOT NULL,
			key_ids TEXT NOT NULL, models TEXT NOT NULL, failed INTEGER NOT NULL,
			ids BLOB NOT NULL, records BLOB NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS call_segments_max_time ON call_segments (max_time_ns)`,
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
