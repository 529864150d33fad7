package callstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/clock"
)

// Recorder takes the gateway's call records. Record must not block on a
// store and must not keep r (nor anything r points to) after it returns:
// the caller reuses its buffers for the next request.
type Recorder interface {
	Record(r *Record)
}

// Tee records each call to every one of its recorders, such as a Writer
// to the store and one to an OTLP collector.
type Tee []Recorder

// Record hands r to each recorder in turn.
func (t Tee) Record(r *Record) {
	for _, rec := range t {
		rec.Record(r)
	}
}

// framedSink is a Sink that takes a batch in the Writer's own framed
// form as well as decoded: a DB stores the frames as they are. recs are
// decoded from framed without copying (their strings point into it), so
// writeFramed must not keep them, nor framed, after it returns. framed
// is nil when recs are only part of it (a damaged spool frame), and then
// recs are encoded again.
type framedSink interface {
	writeFramed(ctx context.Context, framed []byte, recs []Record) error
}

var (
	_ Recorder = Tee(nil)
	_ Recorder = (*Writer)(nil)
)

// WriterOptions configure a Writer. Zero fields take the defaults.
type WriterOptions struct {
	// Name labels the writer's metrics and logs ("sqlite", "otlp").
	Name string
	// Clock drives the flush interval and the retry backoff; nil is the
	// real clock.
	Clock clock.Clock
	// BatchSize is the most records written to the sink at once; 2,000 by
	// default.
	BatchSize int
	// FlushInterval is the longest a record waits in memory before its
	// batch is handed on, however small; 200ms by default.
	FlushInterval time.Duration
	// QueueBatches is how many full batches wait in memory for the sink
	// before further ones go to the spool file; 16 by default.
	QueueBatches int
	// SpoolPath is the file batches go to when the sink is slow or down,
	// replayed in order when it is back (and by the next Writer on the
	// same path, after a restart). Empty means no spool: batches past the
	// queue are dropped, and counted.
	SpoolPath string
	// SpoolMaxBytes caps the spool file; past it batches are dropped, and
	// counted. 1 GiB by default.
	SpoolMaxBytes int64
	// RetryMin and RetryMax bound the backoff between tries of a failing
	// sink; 100ms and 5s by default.
	RetryMin, RetryMax time.Duration
	// WriteTimeout bounds one write to the sink, so that a store that
	// hangs counts as failing; 10s by default.
	WriteTimeout time.Duration
	// Logger gets failures, recoveries and drops; nil is slog.Default().
	Logger *slog.Logger
	// Registerer gets the writer's metrics; nil registers none.
	Registerer prometheus.Registerer
}

func (o WriterOptions) withDefaults() WriterOptions {
	if o.Name == "" {
		o.Name = "calls"
	}
	o.Clock = clock.OrReal(o.Clock)
	if o.BatchSize <= 0 {
		o.BatchSize = 2000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 200 * time.Millisecond
	}
	if o.QueueBatches <= 0 {
		o.QueueBatches = 16
	}
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = 1 << 30
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Writer takes call records from the gateway's requests and writes them
// to a Sink in batches, so that no request waits on a database and none
// is lost to one:
//
//	Record --> current batch --(full, or FlushInterval)--> memory queue --> Sink.Write
//	                                                    \-> spool file ----/  (in order)
//
// Record copies the record into the current batch (a few hundred bytes,
// under a mutex) and returns. Full batches queue in memory while the sink
// keeps up; when the sink is slow or failing, batches past QueueBatches go
// to the spool file, and the writer replays them in order once the sink
// takes writes again, retrying with backoff meanwhile. A batch is dropped
// only when the spool would pass SpoolMaxBytes (or there is no spool and
// the queue is full); every dropped record is counted
// (relia_calls_dropped_total) and logged. Close flushes what it can
// before its context ends and leaves the rest in the spool for the next
// Writer.
//
// Only when the spool's disk cannot keep up with the records does Record
// wait, rather than drop them.
type Writer struct {
	o    WriterOptions
	sink Sink
	log  *slog.Logger
	m    *writerMetrics

	// mu guards the current batch; Record holds it for one append.
	mu      sync.Mutex
	cur     []byte
	curN    int
	curAt   time.Time // when cur got its first record
	sealed  uint64    // batches sealed so far
	closed  bool
	scratch []byte

	// in hands sealed batches to the intake goroutine.
	in chan batch

	// qmu guards the queue and the spool, shared by intake and the sink
	// goroutine.
	qmu     sync.Mutex
	queue   []batch
	spool   *spool // nil without a spool
	pending int64  // records sealed and not yet written or dropped
	wake    chan struct{}
	idle    chan struct{} // closed and replaced when pending falls to 0
	stats   Stats

	free chan []byte // recycled batch buffers

	flushReq   chan chan struct{}
	stop       chan struct{} // closed by Close: drain and exit
	intakeDone chan struct{} // closed when intake has handed on the last batch
	abort      chan struct{} // closed when Close's context ends
	cancel     context.CancelFunc
	ctx        context.Context // cancelled with abort: ends a write in flight
	done       chan struct{}   // closed when both goroutines have exited
	stopOnce   sync.Once

	lastDropLog map[string]time.Time // under qmu
}

// batch is a sealed batch: framed records end to end, numbered in the
// order batches were sealed.
type batch struct {
	buf []byte
	n   int
	seq uint64
}

// Stats are a Writer's counts since it started.
type Stats struct {
	// Recorded counts the records Record took.
	Recorded int64 `json:"recorded"`
	// Written counts the records the sink took.
	Written int64 `json:"written"`
	// Spooled counts the records that went to the spool file.
	Spooled int64 `json:"spooled"`
	// Dropped counts the records lost: past the spool's cap, recorded
	// after Close, or in a damaged spool.
	Dropped int64 `json:"dropped"`
	// Failures counts failed writes to the sink.
	Failures int64 `json:"failures"`
	// SpoolBytes is the spool file's size now.
	SpoolBytes int64 `json:"spool_bytes"`
	// Pending counts the records recorded and neither written nor
	// dropped yet, wherever they wait; Queued those of them in the
	// memory queue.
	Pending int64 `json:"pending"`
	Queued  int64 `json:"queued"`
}

// NewWriter starts a Writer to sink. With a spool path, batches that an
// earlier Writer left in the spool are replayed first.
func NewWriter(sink Sink, o WriterOptions) (*Writer, error) {
	o = o.withDefaults()
	w := &Writer{
		o: o, sink: sink, log: o.Logger.With("sink", o.Name),
		in:          make(chan batch, 4),
		wake:        make(chan struct{}, 1),
		idle:        make(chan struct{}),
		free:        make(chan []byte, o.QueueBatches+4),
		flushReq:    make(chan chan struct{}),
		stop:        make(chan struct{}),
		intakeDone:  make(chan struct{}),
		abort:       make(chan struct{}),
		done:        make(chan struct{}),
		lastDropLog: map[string]time.Time{},
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.m = newWriterMetrics(o.Name, o.Registerer)
	if o.SpoolPath != "" {
		sp, lost, err := openSpool(o.SpoolPath)
		if err != nil {
			return nil, fmt.Errorf("starting the %s call writer: %w", o.Name, err)
		}
		if lost > 0 {
			w.log.Error("call spool was damaged; the batches past the damage are lost", "path", o.SpoolPath, "bytes_lost", lost)
		}
		if !sp.empty() {
			w.log.Info("replaying spooled calls", "path", o.SpoolPath, "records", sp.loaded, "bytes", sp.size())
			w.pending = int64(sp.loaded)
		}
		w.spool = sp
		w.stats.SpoolBytes = sp.size()
		w.m.spoolBytes.Set(float64(sp.size()))
	}
	w.cur = w.newBuf()
	replay := w.spool != nil && !w.spool.empty()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); defer close(w.intakeDone); w.intake() }() // exits at Close
	go func() { defer wg.Done(); w.drainLoop() }()                         // exits at Close, once drained or aborted
	go func() { wg.Wait(); close(w.done) }()
	if replay {
		w.signal()
	}
	return w, nil
}

func (w *Writer) newBuf() []byte {
	select {
	case b := <-w.free:
		return b[:0]
	default:
		return make([]byte, 0, w.o.BatchSize*256)
	}
}

func (w *Writer) recycle(b []byte) {
	select {
	case w.free <- b:
	default:
	}
}

// Record copies r into the current batch. It never waits on the sink.
func (w *Writer) Record(r *Record) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.dropped(1, "closed")
		return
	}
	if w.curN == 0 {
		w.curAt = w.o.Clock.Now()
	}
	w.cur = appendFramed(w.cur, r)
	w.curN++
	w.m.recorded.Inc()
	var sealed batch
	if w.curN >= w.o.BatchSize {
		sealed = w.sealLocked()
	}
	w.mu.Unlock()
	if sealed.n > 0 {
		w.in <- sealed // waits only while intake writes to the spool
	}
}

// sealLocked takes the current batch for handing on, numbered in the
// order batches are sealed; w.mu is held.
func (w *Writer) sealLocked() batch {
	b := batch{buf: w.cur, n: w.curN, seq: w.sealed}
	w.sealed++
	w.qmu.Lock()
	w.pending += int64(b.n)
	w.stats.Recorded += int64(b.n)
	w.qmu.Unlock()
	w.cur, w.curN = w.newBuf(), 0
	return b
}

// sealNow seals the current batch if it has records and, with minAge > 0,
// if its first record has waited that long.
func (w *Writer) sealNow(minAge time.Duration) (batch, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.curN == 0 || minAge > 0 && w.o.Clock.Since(w.curAt) < minAge {
		return batch{}, false
	}
	return w.sealLocked(), true
}

// intake places sealed batches in the queue or the spool in the order
// they were sealed, and seals the current batch when it has waited
// FlushInterval. A batch that Record sealed reaches intake through a
// channel after Record let go of the lock, so one sealed later by the
// timer can be in hand first; arrive holds batches back until those
// sealed before them are placed.
func (w *Writer) intake() {
	t := w.o.Clock.NewTimer(w.o.FlushInterval)
	defer t.Stop()
	held := map[uint64]batch{}
	var next uint64
	arrive := func(b batch) {
		held[b.seq] = b
		for {
			nb, ok := held[next]
			if !ok {
				return
			}
			delete(held, next)
			next++
			w.place(nb)
		}
	}
	for {
		select {
		case b := <-w.in:
			arrive(b)
		case <-t.C():
			if b, ok := w.sealNow(w.o.FlushInterval); ok {
				arrive(b)
			}
			t.Reset(w.o.FlushInterval)
		case done := <-w.flushReq:
			if b, ok := w.sealNow(0); ok {
				arrive(b)
			}
			close(done)
		case <-w.stop:
			// Record seals no more (closed is set): seal what is left and
			// wait for every batch sealed before it.
			b, ok := w.sealNow(0)
			if ok {
				arrive(b)
			}
			w.mu.Lock()
			last := w.sealed
			w.mu.Unlock()
			for next < last {
				arrive(<-w.in)
			}
			w.qmu.Lock()
			w.checkIdleLocked()
			w.qmu.Unlock()
			w.signal()
			return
		}
	}
}

// place queues a sealed batch in memory while the spool is empty and the
// queue has room, and spools it otherwise: everything in the queue is
// older than everything in the spool, so the sink sees batches in order.
func (w *Writer) place(b batch) {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	defer w.signal()
	if (w.spool == nil || w.spool.empty()) && len(w.queue) < w.o.QueueBatches {
		w.queue = append(w.queue, b)
		w.stats.Queued += int64(b.n)
		w.m.queued.Add(float64(b.n))
		return
	}
	if w.spool == nil {
		w.dropLocked(b.n, "queue_full")
		w.recycle(b.buf)
		return
	}
	if w.spool.size()+int64(len(b.buf))+frameHeaderSize > w.o.SpoolMaxBytes {
		w.dropLocked(b.n, "spool_full")
		w.recycle(b.buf)
		return
	}
	if err := w.spool.append(b.buf); err != nil {
		w.log.Error("spooling calls failed; dropping the batch", "records", b.n, "err", err)
		w.dropLocked(b.n, "spool_error")
		w.recycle(b.buf)
		return
	}
	w.stats.Spooled += int64(b.n)
	w.m.spooled.Add(float64(b.n))
	w.setSpoolBytesLocked()
	w.recycle(b.buf)
}

func (w *Writer) setSpoolBytesLocked() {
	w.stats.SpoolBytes = w.spool.size()
	w.m.spoolBytes.Set(float64(w.stats.SpoolBytes))
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Writer) dropped(n int, reason string) {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	w.stats.Recorded += int64(n)
	w.pending += int64(n)
	w.dropLocked(n, reason)
}

// dropLocked counts and logs n records lost; qmu is held. The log says
// so at most once a second per reason, with the running total, so that a
// full disk does not also flood the log.
func (w *Writer) dropLocked(n int, reason string) {
	w.stats.Dropped += int64(n)
	w.pending -= int64(n)
	w.m.dropped.WithLabelValues(reason).Add(float64(n))
	now := w.o.Clock.Now()
	if last, ok := w.lastDropLog[reason]; !ok || now.Sub(last) >= time.Second {
		w.lastDropLog[reason] = now
		w.log.Warn("call records dropped", "records", n, "reason", reason, "dropped_total", w.stats.Dropped)
	}
	w.checkIdleLocked()
}

func (w *Writer) checkIdleLocked() {
	if w.pending <= 0 && len(w.queue) == 0 && (w.spool == nil || w.spool.empty()) {
		w.pending = 0
		close(w.idle)
		w.idle = make(chan struct{})
	}
}

// drainLoop writes the oldest batch to the sink, from the queue or else
// the spool, retrying with backoff while the sink fails.
func (w *Writer) drainLoop() {
	var (
		recs    []Record
		buf     []byte
		backoff time.Duration
		failing bool
	)
	for {
		w.qmu.Lock()
		var (
			b         batch
			fromSpool bool
		)
		switch {
		case len(w.queue) > 0:
			b = w.queue[0]
		case w.spool != nil && !w.spool.empty():
			var err error
			buf, err = w.spool.peek(buf)
			if err != nil {
				// A damaged frame cannot be replayed; skip it.
				w.log.Error("a spooled batch is unreadable and is skipped", "err", err)
				w.spool.pop()
				w.setSpoolBytesLocked()
				w.qmu.Unlock()
				continue
			}
			b, fromSpool = batch{buf: buf}, true
		}
		w.qmu.Unlock()
		if b.buf == nil {
			select {
			case <-w.wake:
				continue
			case <-w.intakeDone:
				// Intake has handed over the last batch: stop once it is
				// written.
				if w.drained() {
					return
				}
				continue
			}
		}
		fs, framed := w.sink.(framedSink)
		var err error
		recs, err = decodeChunkIn(b.buf, recs[:0], framed)
		if fromSpool {
			b.n = countFrames(b.buf)
		}
		whole := b.buf
		if err != nil {
			// Only a damaged spool frame that passed its checksum gets here.
			w.log.Error("a spooled batch holds a bad record; its good records are written", "err", err)
			whole = nil
		}
		err = nil
		if len(recs) > 0 {
			ctx, cancel := context.WithTimeout(w.ctx, w.o.WriteTimeout)
			if framed {
				err = fs.writeFramed(ctx, whole, recs)
			} else {
				err = w.sink.Write(ctx, recs)
			}
			cancel()
		}
		if err != nil {
			w.qmu.Lock()
			w.stats.Failures++
			w.qmu.Unlock()
			w.m.failures.Inc()
			if !failing {
				w.log.Error("writing calls failed; queueing and spooling until the store is back", "err", err)
				failing = true
			}
			backoff = min(max(backoff*2, w.o.RetryMin), w.o.RetryMax)
			if !w.sleep(backoff) {
				// Close's context ended: keep what is left in the spool.
				w.persistQueue()
				return
			}
			continue
		}
		if failing {
			w.log.Info("writing calls again")
			failing, backoff = false, 0
		}
		w.qmu.Lock()
		if fromSpool {
			if err := w.spool.pop(); err != nil {
				w.log.Error("updating the spool's read offset failed", "err", err)
			}
			w.setSpoolBytesLocked()
			w.pending -= int64(b.n)
			if lost := b.n - len(recs); lost > 0 {
				w.pending += int64(lost) // dropLocked takes them off again
				w.dropLocked(lost, "corrupt_spool")
			}
		} else {
			w.queue[0] = batch{}
			w.queue = w.queue[1:]
			w.stats.Queued -= int64(b.n)
			w.m.queued.Sub(float64(b.n))
			w.pending -= int64(b.n)
			w.recycle(b.buf)
		}
		w.stats.Written += int64(len(recs))
		w.m.written.Add(float64(len(recs)))
		w.checkIdleLocked()
		w.qmu.Unlock()
	}
}

// drained reports whether nothing waits in the queue or the spool.
func (w *Writer) drained() bool {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	return len(w.queue) == 0 && (w.spool == nil || w.spool.empty())
}

// sleep waits d on the clock; false when Close's context ended first.
func (w *Writer) sleep(d time.Duration) bool {
	t := w.o.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-w.abort:
		return false
	}
}

// persistQueue moves the queued batches to the front of the spool, at a
// shutdown that could not write them.
func (w *Writer) persistQueue() {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	if len(w.queue) == 0 {
		return
	}
	n := 0
	bufs := make([][]byte, len(w.queue))
	for i, b := range w.queue {
		bufs[i] = b.buf
		n += b.n
	}
	if w.spool == nil {
		w.queue, w.stats.Queued = nil, 0
		w.m.queued.Set(0)
		w.dropLocked(n, "closed")
		return
	}
	if err := w.spool.prepend(bufs); err != nil {
		w.log.Error("spooling the queue at shutdown failed", "err", err)
		w.queue, w.stats.Queued = nil, 0
		w.m.queued.Set(0)
		w.dropLocked(n, "spool_error")
		return
	}
	w.stats.Spooled += int64(n)
	w.m.spooled.Add(float64(n))
	w.queue = nil
	w.stats.Queued = 0
	w.m.queued.Set(0)
	w.setSpoolBytesLocked()
}

// Flush hands the current batch on and waits until every record
// recorded before the call is written (or dropped), or ctx ends.
func (w *Writer) Flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case w.flushReq <- done:
	case <-w.stop:
		return errors.New("flushing calls: the writer is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		w.qmu.Lock()
		if w.pending <= 0 && len(w.queue) == 0 && (w.spool == nil || w.spool.empty()) {
			w.qmu.Unlock()
			return nil
		}
		idle := w.idle
		w.qmu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("flushing calls: %w", ctx.Err())
		}
	}
}

// Stats returns the writer's counts.
func (w *Writer) Stats() Stats {
	w.qmu.Lock()
	defer w.qmu.Unlock()
	s := w.stats
	s.Pending = w.pending
	return s
}

// Close stops taking records, writes what waits until ctx ends, and then
// keeps the rest in the spool (or drops it, counted, without one). It
// returns an error naming how many records were left behind, if any.
// Records recorded after Close are dropped and counted.
func (w *Writer) Close(ctx context.Context) error {
	w.stopOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.stop)
	})
	select {
	case <-w.done:
	case <-ctx.Done():
		close(w.abort)
		w.cancel()
		<-w.done
	}
	w.cancel()
	w.qmu.Lock()
	left := w.stats.SpoolBytes
	leftover := w.spool != nil && !w.spool.empty()
	w.qmu.Unlock()
	var err error
	if w.spool != nil {
		err = w.spool.close()
	}
	if leftover {
		return errors.Join(err, fmt.Errorf("closing the %s call writer: %d bytes of calls left in the spool %s for the next start", w.o.Name, left, w.o.SpoolPath))
	}
	return err
}

// writerMetrics are a Writer's Prometheus metrics.
type writerMetrics struct {
	recorded, written, spooled, failures prometheus.Counter
	dropped                              *prometheus.CounterVec
	queued, spoolBytes                   prometheus.Gauge
}

func newWriterMetrics(name string, reg prometheus.Registerer) *writerMetrics {
	l := prometheus.Labels{"sink": name}
	m := &writerMetrics{
		recorded:   prometheus.NewCounter(prometheus.CounterOpts{Name: "relia_calls_recorded_total", Help: "Call records taken from requests.", ConstLabels: l}),
		written:    prometheus.NewCounter(prometheus.CounterOpts{Name: "relia_calls_written_total", Help: "Call records written to the sink.", ConstLabels: l}),
		spooled:    prometheus.NewCounter(prometheus.CounterOpts{Name: "relia_calls_spooled_total", Help: "Call records that went to the spool file while the sink was slow or down.", ConstLabels: l}),
		failures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "relia_calls_write_failures_total", Help: "Failed batch writes to the sink (each retried).", ConstLabels: l}),
		dropped:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "relia_calls_dropped_total", Help: "Call records lost, by reason.", ConstLabels: l}, []string{"reason"}),
		queued:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "relia_calls_queued", Help: "Call records waiting in memory for the sink.", ConstLabels: l}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "relia_calls_spool_bytes", Help: "Size of the spool file.", ConstLabels: l}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.recorded, m.written, m.spooled, m.failures, m.dropped, m.queued, m.spoolBytes} {
			reg.MustRegister(c)
		}
	}
	return m
}
