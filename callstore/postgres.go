package callstore

import (
	"context"
	"database/sql"
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

func (postgresDialect) contains(col string) string { return "strpos(" + col + ", ?) > 0" }

func (postgresDialect) lock(ctx context.Context, tx *sql.Tx, what int64) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, what)
	return err
}

func (postgresDialect) schema() []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS relia_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS call_segments (
			first_seq BIGINT PRIMARY KEY, n INTEGER NOT NULL,
			min_time_ns BIGINT NOT NULL, max_time_ns BIGINT NOT NULL,
			gateways TEXT NOT NULL, routes TEXT NOT NULL, apis TEXT NOT NULL, tenants TEXT NOT NULL,
			key_ids TEXT NOT NULL, models TEXT NOT NULL, failed INTEGER NOT NULL,
			ids BYTEA NOT NULL, records BYTEA NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS call_segments_max_time ON call_segments (max_time_ns)`,
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
