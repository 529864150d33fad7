package callstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/relia-dev/relia/clock"
)

// DB is a call store in a SQL database: SQLite, embedded, for one gateway
// (the default), or PostgreSQL for several gateways sharing one history.
// It keeps the raw calls, per-minute and per-hour rollups of them, the
// append-only audit log and API management's subscriptions; both
// databases hold the same tables and answer the same queries.
//
// A DB is safe for concurrent use. Several DBs, in one process or many,
// may share one PostgreSQL database; SQLite allows one writing process.
type DB struct {
	clock   clock.Clock
	db      *sql.DB
	dialect dialect
	dsn     string

	compactMu sync.Mutex
}

// dialect is what differs between the databases.
type dialect interface {
	name() string
	// schema returns the statements that create the tables, run in
	// order in one transaction.
	schema() []string
	// rebind turns the ? placeholders of a statement into the
	// database's own.
	rebind(query string) string
	// contains is a condition that column holds the string bound to its
	// one placeholder.
	contains(column string) string
	// lock takes a lock, held until tx ends, that serialises schema
	// changes and compaction across processes sharing the database.
	lock(ctx context.Context, tx *sql.Tx, what int64) error
}

// Lock ids for dialect.lock.
const (
	lockSchema  = 0x72656c6961_01 // "relia" 1
	lockCompact = 0x72656c6961_02
)

// schemaVersion is the version of the tables; a store refuses a database
// written by a newer relia.
const schemaVersion = 1

// Open opens the call store at dsn, creating its tables when they are
// missing:
//
//	postgres://user@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://)
//	sqlite:/var/lib/relia/calls.db                 SQLite (also a plain path)
//
// A SQLite file is created when missing, with write-ahead logging so
// that queries never wait for the gateway's writes.
func Open(ctx context.Context, dsn string, o Options) (*DB, error) {
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		db, d, err = openPostgres(dsn)
	case dsn == "":
		return nil, errors.New("opening call store: no database given (a SQLite path or a postgres:// URL)")
	default:
		db, d, err = openSQLite(strings.TrimPrefix(dsn, "sqlite:"))
	}
	if err != nil {
		return nil, fmt.Errorf("opening call store %s: %w", redactDSN(dsn), err)
	}
	s := &DB{clock: clock.OrReal(o.Clock), db: db, dialect: d, dsn: dsn}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening call store %s: %w", redactDSN(dsn), err)
	}
	return s, nil
}

// Options adjust a DB. The zero value is ready to use.
type Options struct {
	// Clock is the time that "now" means for queries that end now, for
	// audit entries without a time and for retention. Nil is the real
	// clock.
	Clock clock.Clock
}

// redactDSN hides a password in a postgres URL, for errors and logs.
func redactDSN(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return dsn
}

// String names the store for logs, without a password.
func (s *DB) String() string { return s.dialect.name() + " " + redactDSN(s.dsn) }

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

func (s *DB) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	defer tx.Rollback()
	if err := s.dialect.lock(ctx, tx, lockSchema); err != nil {
		return fmt.Errorf("creating tables: %w", err)
	}
	for _, stmt := range s.dialect.schema() {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("creating tables: %w (in %.60q)", err, stmt)
		}
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT value FROM relia_meta WHERE name = 'schema_version'`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO relia_meta (name, value) VALUES ('schema_version', ?), ('next_seq', 1)`), schemaVersion); err != nil {
			return fmt.Errorf("recording the schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading the schema version: %w", err)
	case v > schemaVersion:
		return fmt.Errorf("the database holds call store schema %d, newer than this relia's %d", v, schemaVersion)
	}
	return tx.Commit()
}

// inTx runs f in a transaction and commits it when f succeeds.
func (s *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// The columns of the segments table, in the order rows are written.
var segmentColumns = []string{
	"first_seq", "n", "min_time_ns", "max_time_ns", "gateways", "routes", "apis", "tenants", "key_ids", "models",
	"failed", "ids", "records",
}

// The columns of the rollups table, in the order rows are written.
var rollupColumns = []string{
	"resolution", "bucket", "route", "api", "tenant", "key_id", "model",
	"calls", "failed", "rejected", "status_4xx", "status_5xx", "latency_sum_ns", "upstream_sum_ns",
	"bytes_in", "bytes_out", "input_tokens", "output_tokens", "cost", "latency_hist",
}
