package callstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/relia-dev/relia/clock"
)

// memSink keeps what it is given, and fails while told to.
type memSink struct {
	mu     sync.Mutex
	recs   []Record
	fail   bool
	writes int
}

func (m *memSink) Write(_ context.Context, recs []Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	if m.fail {
		return errors.New("store down")
	}
	m.recs = append(m.recs, recs...)
	return nil
}

func (m *memSink) setFail(f bool) {
	m.mu.Lock()
	m.fail = f
	m.mu.Unlock()
}

func (m *memSink) ids() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, len(m.recs))
	for i, r := range m.recs {
		ids[i] = r.RequestID
	}
	return ids
}

// numbered returns the request ids "0" to "n-1", the order records are
// made in by recordN.
func numbered(from, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = strconv.Itoa(from + i)
	}
	return ids
}

func recordN(w *Writer, from, n int) {
	for i := from; i < from+n; i++ {
		r := call(i, "orders", "acme", 200, time.Millisecond)
		r.RequestID = strconv.Itoa(i)
		w.Record(&r)
	}
}

func flush(t *testing.T, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func equalIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: record %d is %s, want %s (order lost)", what, i, got[i], want[i])
		}
	}
}

// eventually polls cond until it holds; the bound is only a guard
// against a hang, never a measurement.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriterBatchesAndFlushesOnTime(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	sink := &memSink{}
	w, err := NewWriter(sink, WriterOptions{Clock: clk, BatchSize: 10, FlushInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	recordN(w, 0, 25)
	eventually(t, "two full batches", func() bool { return len(sink.ids()) == 20 })
	// The last 5 wait for the flush interval.
	clk.BlockUntil(1)
	clk.Advance(999 * time.Millisecond)
	if n := len(sink.ids()); n != 20 {
		t.Fatalf("%d records written before the flush interval passed, want 20", n)
	}
	clk.Advance(2 * time.Millisecond)
	eventually(t, "the flush interval's batch", func() bool { return len(sink.ids()) == 25 })
	equalIDs(t, "written", sink.ids(), numbered(0, 25))
	if sink.writes != 3 {
		t.Errorf("%d writes, want 3 batches", sink.writes)
	}
}

func TestWriterSpoolsWhileTheSinkFailsAndReplaysInOrder(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	sink := &memSink{fail: true}
	reg := prometheus.NewRegistry()
	spoolPath := filepath.Join(t.TempDir(), "spool")
	w, err := NewWriter(sink, WriterOptions{Clock: clk, BatchSize: 10, QueueBatches: 2, SpoolPath: spoolPath, Registerer: reg, RetryMin: time.Second, RetryMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	recordN(w, 0, 100)
	eventually(t, "the batches past the queue to be spooled", func() bool { return w.Stats().Spooled == 80 })
	if st, _ := os.Stat(spoolPath); st.Size() < 80*100 {
		t.Fatalf("spool file holds %d bytes for 80 records", st.Size())
	}
	// The store comes back; the writer's next retry finds it.
	sink.setFail(false)
	clk.BlockUntil(2) // intake's flush timer and the retry backoff
	clk.Advance(time.Second)
	flush(t, w)
	equalIDs(t, "written", sink.ids(), numbered(0, 100))
	st := w.Stats()
	if st.Written != 100 || st.Dropped != 0 || st.Failures < 1 || st.SpoolBytes != spoolHeaderSize {
		t.Fatalf("stats %+v", st)
	}
	if got := testutil.ToFloat64(w.m.written); got != 100 {
		t.Errorf("relia_calls_written_total %v, want 100", got)
	}
	if got := testutil.ToFloat64(w.m.spooled); got != 80 {
		t.Errorf("relia_calls_spooled_total %v, want 80", got)
	}
}

func TestWriterDropsPastTheSpoolCapAndCountsEveryDrop(t *testing.T) {
	t.Parallel()
	for _, withSpool := range []bool{true, false} {
		t.Run(fmt.Sprint("spool=", withSpool), func(t *testing.T) {
			t.Parallel()
			clk := clock.NewFake(t0)
			sink := &memSink{fail: true}
			o := WriterOptions{Clock: clk, BatchSize: 10, QueueBatches: 1, RetryMin: time.Hour}
			if withSpool {
				o.SpoolPath = filepath.Join(t.TempDir(), "spool")
				o.SpoolMaxBytes = 3000 // room for a few batches of 10
			}
			w, err := NewWriter(sink, o)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			recordN(w, 0, 200)
			eventually(t, "every batch to be placed", func() bool {
				st := w.Stats()
				return st.Queued+st.Spooled+st.Dropped == 200
			})
			st := w.Stats()
			kept := st.Pending
			if st.Dropped == 0 || st.Dropped%10 != 0 || kept+st.Dropped != 200 {
				t.Fatalf("stats %+v: want whole batches dropped, the rest kept", st)
			}
			var dropped float64
			for _, reason := range []string{"spool_full", "queue_full"} {
				dropped += testutil.ToFloat64(w.m.dropped.WithLabelValues(reason))
			}
			if dropped != float64(st.Dropped) {
				t.Errorf("relia_calls_dropped_total %v, want %d", dropped, st.Dropped)
			}
			// What was kept is written, in order, when the store is back.
			sink.setFail(false)
			clk.BlockUntil(2)
			clk.Advance(time.Hour)
			flush(t, w)
			if got := int64(len(sink.ids())); got != kept {
				t.Fatalf("%d written, want the %d kept", got, kept)
			}
			equalIDs(t, "kept", sink.ids(), numbered(0, int(kept)))
		})
	}
}

func TestWriterCloseKeepsTheRestForTheNextStart(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	spoolPath := filepath.Join(t.TempDir(), "spool")
	down := &memSink{fail: true}
	w, err := NewWriter(down, WriterOptions{Clock: clk, BatchSize: 10, QueueBatches: 3, SpoolPath: spoolPath, RetryMin: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	recordN(w, 0, 77) // 3 batches queued, 4 spooled, 7 in the current batch
	eventually(t, "the spool", func() bool { return w.Stats().Spooled == 40 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the shutdown's deadline has passed: keep everything
	if err := w.Close(ctx); err == nil {
		t.Fatal("Close left calls in the spool and said nothing")
	}
	if st := w.Stats(); st.Dropped != 0 {
		t.Fatalf("Close dropped %d records", st.Dropped)
	}
	w.Record(&Record{RequestID: "late"})
	if st := w.Stats(); st.Dropped != 1 {
		t.Fatalf("a record after Close: dropped %d, want 1", st.Dropped)
	}

	// The next start replays all 77 in order before new records.
	up := &memSink{}
	w2, err := NewWriter(up, WriterOptions{Clock: clk, BatchSize: 10, SpoolPath: spoolPath})
	if err != nil {
		t.Fatal(err)
	}
	recordN(w2, 77, 5)
	flush(t, w2)
	if err := w2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	equalIDs(t, "replayed then new", up.ids(), numbered(0, 82))
}

func TestSpoolCutsATornTail(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool")
	sp, _, err := openSpool(path)
	if err != nil {
		t.Fatal(err)
	}
	var chunk []byte
	for i := range 3 {
		r := call(i, "orders", "acme", 200, time.Millisecond)
		chunk = appendFramed(chunk, &r)
	}
	for range 2 {
		if err := sp.append(chunk); err != nil {
			t.Fatal(err)
		}
	}
	good := sp.end
	// A crash in the middle of the third append.
	if _, err := sp.f.WriteAt([]byte{200, 0, 0, 0, 1, 2}, good); err != nil {
		t.Fatal(err)
	}
	sp.f.Close()
	sp, lost, err := openSpool(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if lost != 6 || sp.frames != 2 || sp.loaded != 6 || sp.end != good {
		t.Fatalf("reopened: lost %d, %d frames of %d records ending at %d; want 6, 2, 6, %d", lost, sp.frames, sp.loaded, sp.end, good)
	}
	// Not a spool at all: refused rather than overwritten.
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte("precious data, not a spool"), 0o600)
	if _, _, err := openSpool(other); err == nil {
		t.Fatal("a file that is not a spool was opened as one")
	}
}

// TestWriterKeepsOrderWhenTheTimerSealsToo records from one goroutine
// while the flush timer fires all the time: batches sealed by Record and
// by the timer must still reach the sink in the order they were sealed.
func TestWriterKeepsOrderWhenTheTimerSealsToo(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(t0)
	sink := &memSink{}
	w, err := NewWriter(sink, WriterOptions{Clock: clk, BatchSize: 7, FlushInterval: time.Millisecond, QueueBatches: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		for {
			select {
			case <-stop:
				return
			default:
				clk.Advance(time.Millisecond)
			}
		}
	}()
	const n = 6000
	recordN(w, 0, n)
	close(stop)
	<-ticked
	flush(t, w)
	equalIDs(t, "written", sink.ids(), numbered(0, n))
}
