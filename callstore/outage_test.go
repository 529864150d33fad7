package callstore

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/pgtest"
)

// outageWriter is a writer with a real clock and quick retries, as a
// gateway would run one, but with small batches so that an outage in a
// test spans many.
func outageWriter(t *testing.T, s Sink) *Writer {
	t.Helper()
	w, err := NewWriter(s, WriterOptions{
		BatchSize: 100, FlushInterval: 20 * time.Millisecond, QueueBatches: 4,
		SpoolPath: filepath.Join(t.TempDir(), "spool"), RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		WriteTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	return w
}

func countCalls(t *testing.T, s *DB) int64 {
	t.Helper()
	n, err := s.Count(testContext(t), Query{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWriterLosesNothingWhilePostgresIsDown stops a real PostgreSQL
// server in the middle of a stream of calls and starts it again: every
// call recorded meanwhile reaches the database, in order.
func TestWriterLosesNothingWhilePostgresIsDown(t *testing.T) {
	srv := pgtest.Start(t)
	s := openStore(t, srv.NewDatabase(t), nil)
	w := outageWriter(t, s)
	recordN(w, 0, 1000)
	flush(t, w)
	srv.Stop()
	recordN(w, 1000, 2000)
	eventually(t, "calls to be spooled while the database is down", func() bool { return w.Stats().Spooled > 0 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	if n := countCalls(t, s); n != 3000 {
		t.Fatalf("%d calls stored, want all 3000 (stats %+v)", n, w.Stats())
	}
	got, err := s.Calls(testContext(t), Query{AfterSeq: 1, Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(got))
	for i, r := range got {
		ids[i] = r.RequestID
	}
	equalIDs(t, "stored", ids, numbered(1, 2999))
}

// TestWriterLosesNothingWhileSQLiteIsLocked holds SQLite's write lock
// from another connection, as a backup or a sqlite3 shell would, for a
// while: the writes fail past the busy timeout, the calls spool, and all
// of them land once the lock is released.
func TestWriterLosesNothingWhileSQLiteIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "calls.db")
	s := openStore(t, path, nil)
	w := outageWriter(t, s)
	recordN(w, 0, 500)
	flush(t, w)

	other, err := sql.Open("sqlite", "file:"+path+"?_txlock=exclusive")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx := context.Background()
	lock, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	recordN(w, 500, 1500)
	eventually(t, "a failed write while the database is locked", func() bool { return w.Stats().Failures > 0 })
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	flush(t, w)
	if n := countCalls(t, s); n != 2000 {
		t.Fatalf("%d calls stored, want all 2000 (stats %+v)", n, w.Stats())
	}
}
