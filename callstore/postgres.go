package callstore

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

type postgresDialect struct{}

func openPostgres(dsn string) (*sql.DB, dialect, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, err
	}
	return stdlib.OpenDB(*cfg), postgresDialect{}, nil
}

func (postgresDialect) name() string { return "postgres" }

// rebind numbers the ? placeholders: $1, $2, ... The statements relia
// writes never hold a ? inside a literal.
func (postgresDialect) rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (postgresDialect) like() string { return "ILIKE" }

func (postgresDialect) lock(ctx context.Context, tx *sql.Tx, what int64) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, what)
	return err
}

func (postgresDialect) schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS relia_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS calls (
			seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			time_ns BIGINT NOT NULL, request_id TEXT NOT NULL, trace_id TEXT NOT NULL, gateway TEXT NOT NULL,
			route TEXT NOT NULL, api TEXT NOT NULL, api_version TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
			method TEXT NOT NULL, path_template TEXT NOT NULL, path TEXT NOT NULL, status INTEGER NOT NULL,
			outcome TEXT NOT NULL, reason TEXT NOT NULL, latency_ns BIGINT NOT NULL, upstream_ns BIGINT NOT NULL,
			ttfb_ns BIGINT NOT NULL, target TEXT NOT NULL, attempts INTEGER NOT NULL, bytes_in BIGINT NOT NULL,
			bytes_out BIGINT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, input_tokens BIGINT NOT NULL,
			output_tokens BIGINT NOT NULL, cost DOUBLE PRECISION NOT NULL, detail TEXT)`,
		`CREATE INDEX IF NOT EXISTS calls_time ON calls (time_ns)`,
		`CREATE INDEX IF NOT EXISTS calls_request_id ON calls (request_id)`,
		`CREATE INDEX IF NOT EXISTS calls_trace_id ON calls (trace_id) WHERE trace_id != ''`,
		`CREATE TABLE IF NOT EXISTS call_rollups (
			id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			resolution INTEGER NOT NULL, bucket BIGINT NOT NULL,
			route TEXT NOT NULL, api TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL, model TEXT NOT NULL,
			calls BIGINT NOT NULL, failed BIGINT NOT NULL, rejected BIGINT NOT NULL,
			status_4xx BIGINT NOT NULL, status_5xx BIGINT NOT NULL,
			latency_sum_ns BIGINT NOT NULL, upstream_sum_ns BIGINT NOT NULL,
			bytes_in BIGINT NOT NULL, bytes_out BIGINT NOT NULL,
			input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, cost DOUBLE PRECISION NOT NULL,
			latency_hist BYTEA NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS call_rollups_bucket ON call_rollups (resolution, bucket)`,
		`CREATE TABLE IF NOT EXISTS audit_log (
			seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			time_ns BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
			tenant TEXT NOT NULL, api TEXT NOT NULL, detail TEXT NOT NULL)`,
		`CREATE OR REPLACE FUNCTION relia_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS
			$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$`,
		`DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log`,
		`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
			FOR EACH STATEMENT EXECUTE FUNCTION relia_audit_log_append_only()`,
		`CREATE TABLE IF NOT EXISTS subscriptions (
			tenant TEXT NOT NULL, api TEXT NOT NULL, state TEXT NOT NULL,
			requested_at_ns BIGINT NOT NULL, decided_at_ns BIGINT NOT NULL,
			decided_by TEXT NOT NULL, note TEXT NOT NULL,
			PRIMARY KEY (tenant, api))`,
	}
}

// write loads the batch with COPY, PostgreSQL's bulk load (one round
// trip for all the calls, one for the rollups), in a transaction on the
// pgx connection under database/sql's.
func (postgresDialect) write(ctx context.Context, db *sql.DB, recs []Record, rollups []rollupRow) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return errors.New("not a pgx connection")
		}
		tx, err := sc.Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if err := copyRows(ctx, tx, "calls", callColumns, len(recs), func(i int, row []any) ([]any, error) {
			return callArgs(row, &recs[i])
		}); err != nil {
			return err
		}
		if err := copyRows(ctx, tx, "call_rollups", rollupColumns, len(rollups), func(i int, row []any) ([]any, error) {
			return rollupArgs(row, &rollups[i])
		}); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
}

// copyRows copies n rows made by row into table.
func copyRows(ctx context.Context, tx pgx.Tx, table string, cols []string, n int, row func(i int, row []any) ([]any, error)) error {
	i := 0
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		r, err := row(i, make([]any, 0, len(cols)))
		i++
		return r, err
	})
	_, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, src)
	return err
}
