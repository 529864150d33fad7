package callstore

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// t0 is the tests' epoch: a Monday, on the hour.
var t0 = time.Date(2027, 3, 1, 10, 0, 0, 0, time.UTC)

// eachStore runs f against a SQLite store and a PostgreSQL store (the
// package's shared server), each fresh, with a fake clock of its own set
// to start.
func eachStore(t *testing.T, start time.Time, f func(t *testing.T, s *DB, clk *clock.Fake)) {
	t.Helper()
	for _, kind := range []string{"sqlite", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			var dsn string
			if kind == "sqlite" {
				dsn = filepath.Join(t.TempDir(), "calls.db")
			} else {
				dsn = pgtest.Shared(t).NewDatabase(t)
			}
			clk := clock.NewFake(start)
			f(t, openStore(t, dsn, clk), clk)
		})
	}
}

func openStore(t *testing.T, dsn string, clk clock.Clock) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Open(ctx, dsn, Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
