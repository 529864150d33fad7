package outcome

import (
	"iter"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// state is everything a Recorder holds. UnmarshalJSON builds a new one
// and swaps it in whole.
type state struct {
	width      int64 // bucket width, ns
	maxLatency time.Duration
	numChunks  int // histogram chunks needed up to maxLatency
	stripeMask uint32

	shards []shard
	latest atomic.Pointer[bucket]  // the latest bucket, the one Record almost always wants
	pages  atomic.Pointer[[]*page] // every page, by num; replaced, never changed
	mu     sync.Mutex              // serialises adding pages
}

func newState(o Options) (*state, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	// Goroutines pick stripes by a hash, so two busy ones share a stripe
	// with probability 1/n; eight stripes per core keep that rare, and a
	// bucket allocates only the stripes that are used.
	n := 1
	for n < 8*runtime.GOMAXPROCS(0) && n < 64 {
		n *= 2
	}
	s := &state{
		width:      int64(o.BucketWidth),
		maxLatency: o.MaxLatency,
		numChunks:  cellOf(micros(o.MaxLatency))>>chunkBits + 1,
		stripeMask: uint32(n - 1),
		shards:     make([]shard, n),
	}
	s.pages.Store(new([]*page))
	return s, nil
}

// Buckets are grouped in pages of 256 so that the directory of pages,
// copied whenever a page is added, stays short.
const (
	pageBits = 8
	pageLen  = 1 << pageBits
)

type page struct {
	num   int64 // bucket index >> pageBits
	slots [pageLen]atomic.Pointer[bucket]
}

// statusClasses is the size of Summary.ByStatusClass: no status, 1xx..5xx.
const statusClasses = 6

// Histogram layers. An outcome whose service time falls in the same cell
// as its latency (always, when ServiceTime is 0: the closed model, the
// gateway and the fault proxy) is counted once, in layerSame; the others
// are counted in layerLatency and layerService. Latency is then
// same+latency and service time same+service, so the common case pays
// for one histogram entry.
const (
	layerSame = iota
	layerLatency
	layerService
	numLayers
)

type bucket struct {
	idx     int64
	start   int64                    // Unix ns
	stripes []atomic.Pointer[stripe] // allocated on first use
}

// stripe is one goroutine's share of a bucket (see stripeHint), guarded
// by the mutex of the recorder's shard with the same index: its counters
// and its histogram cells. Being under the lock, they need no atomic adds,
// and cores recording at once never write the same memory. Cells are
// first kept as a log, 4 bytes per outcome; once a stripe has logged
// logCap entries in a bucket, further outcomes go to dense cells, 1 KB per
// 256 cells of latency range in use. A bucket thus costs memory in
// proportion to its traffic until dense cells become the cheaper form.
// Its size is a whole number of cache lines, so that stripes used by
// different cores never share one.
type stripe struct {
	bytesIn       int64
	bytesOut      int64
	byStatusClass [statusClasses]int64
	byClass       [NumClasses]int64
	clamped       int64
	logLen        int
	log           [logCap / logSegLen]*[logSegLen]logEntry // allocated as it fills
	dense         *[numLayers]dense                        // allocated when the log is full
	_             [1]int64
}

// The log grows in segments of 256 entries, so filling it allocates a few
// times per stripe and bucket and never copies.
const (
	logSegBits = 8
	logSegLen  = 1 << logSegBits
	logCap     = 8 * logSegLen
)

// logEntry is n outcomes in one cell of one layer: bits 0-15 the cell
// (cells stop below 46,000 even for the longest durations), 16-17 the
// layer, 18-31 n-1. Record logs n=1; merging logs whole cells.
type logEntry uint32

const maxLogCount = 1 << 14

func newLogEntry(layer, cell int, n int64) logEntry {
	return logEntry(cell | layer<<16 | int(n-1)<<18)
}

func (e logEntry) split() (layer, cell int, n int64) {
	return int(e>>16) & 3, int(e & 0xffff), int64(e>>18) + 1
}

// append logs e if the log has room for it and room-1 more entries after
// it, reporting whether it did.
func (st *stripe) append(e logEntry, room int) bool {
	if st.logLen+room > logCap {
		return false
	}
	seg := st.log[st.logLen>>logSegBits]
	if seg == nil {
		seg = new([logSegLen]logEntry)
		st.log[st.logLen>>logSegBits] = seg
	}
	seg[st.logLen&(logSegLen-1)] = e
	st.logLen++
	return true
}

// addDense adds n to a cell of a layer's dense cells.
func (st *stripe) addDense(layer, cell int, n uint64, numChunks int) {
	if st.dense == nil {
		st.dense = new([numLayers]dense)
	}
	st.dense[layer].add(cell, n, numChunks)
}

// each calls f with every logged entry and every non-empty dense cell.
func (st *stripe) each(f func(layer, cell int, n int64)) {
	for i := range st.logLen {
		f(st.log[i>>logSegBits][i&(logSegLen-1)].split())
	}
	if st.dense != nil {
		for l := range st.dense {
			st.dense[l].each(func(cell int, n uint64) { f(l, cell, int64(n)) })
		}
	}
}

// dense is one layer of a stripe's histogram cells: counts of 32 bits in
// chunks of 256 cells, allocated when first reached, which carry into a
// map in the rare cell that passes 2^32 counts.
type dense struct {
	chunks []*[chunkLen]uint32
	high   map[int]uint64 // bits 32..63 of the cells that have them
}

func (d *dense) add(cell int, n uint64, numChunks int) {
	if d.chunks == nil {
		d.chunks = make([]*[chunkLen]uint32, numChunks)
	}
	c := d.chunks[cell>>chunkBits]
	if c == nil {
		c = new([chunkLen]uint32)
		d.chunks[cell>>chunkBits] = c
	}
	v := uint64(c[cell&(chunkLen-1)]) + n
	c[cell&(chunkLen-1)] = uint32(v)
	if v>>32 != 0 {
		if d.high == nil {
			d.high = make(map[int]uint64)
		}
		d.high[cell] += v >> 32
	}
}

// each calls f with every non-empty cell in ascending order.
func (d *dense) each(f func(cell int, n uint64)) {
	for k, c := range d.chunks {
		if c == nil {
			continue
		}
		for j, low := range c {
			n := uint64(low)
			if d.high != nil {
				n += d.high[k<<chunkBits+j] << 32
			}
			if n != 0 {
				f(k<<chunkBits+j, n)
			}
		}
	}
}

// shard is the lock over one stripe of every bucket, and that stripe's
// share of the per-status-code totals.
type shard struct {
	mu         sync.Mutex
	codeTotals *[600]int64 // allocated on first use; guarded by mu
	_          [64 - 16]byte
}

// codes returns the shard's status code totals; mu must be held.
func (sh *shard) codes() *[600]int64 {
	if sh.codeTotals == nil {
		sh.codeTotals = new([600]int64)
	}
	return sh.codeTotals
}

// addCounts adds o's counters to st.
func (st *stripe) addCounts(o *stripe) {
	st.bytesIn += o.bytesIn
	st.bytesOut += o.bytesOut
	for i, n := range o.byStatusClass {
		st.byStatusClass[i] += n
	}
	for i, n := range o.byClass {
		st.byClass[i] += n
	}
	st.clamped += o.clamped
}

// read adds the counters of all of b's stripes to sum and calls cell, if
// not nil, with every non-empty cell of every layer (a cell may come more
// than once).
func (s *state) read(b *bucket, sum *stripe, cell func(layer, cell int, n int64)) {
	for k := range b.stripes {
		st := b.stripes[k].Load()
		if st == nil {
			continue
		}
		sh := &s.shards[k]
		sh.mu.Lock()
		sum.addCounts(st)
		if cell != nil {
			st.each(cell)
		}
		sh.mu.Unlock()
	}
}

// add adds counters and per-layer cells to b's first stripe: cells into
// its log while it has room and a cell's count fits an entry, the rest
// into its dense cells.
func (s *state) add(b *bucket, counts *stripe, layers *[numLayers]Histogram) {
	st := b.stripe(0)
	sh := &s.shards[0]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st.addCounts(counts)
	for l := range layers {
		layers[l].cells(func(cell int, n int64) bool {
			if n > maxLogCount || !st.append(newLogEntry(l, cell, n), 1) {
				st.addDense(l, cell, uint64(n), s.numChunks)
			}
			return true
		})
	}
}

// statusCodes sums the shards' per-status-code totals.
func (s *state) statusCodes() (codes [600]int64) {
	for k := range s.shards {
		sh := &s.shards[k]
		sh.mu.Lock()
		if sh.codeTotals != nil {
			for code, n := range sh.codeTotals {
				codes[code] += n
			}
		}
		sh.mu.Unlock()
	}
	return codes
}

// addStatusCodes adds to the first shard's status code totals.
func (s *state) addStatusCodes(add [600]int64) {
	sh := &s.shards[0]
	sh.mu.Lock()
	for code, n := range add {
		sh.codes()[code] += n
	}
	sh.mu.Unlock()
}

// stripeHint returns a number that stays the same across calls from one
// goroutine and differs between goroutines: a hash of the address of a
// local variable, which lives on the calling goroutine's stack. A
// goroutine that keeps recording thus keeps to one stripe and its core
// keeps the stripe's cache lines. (A random stripe per call, from
// math/rand/v2, costs more than this and makes cores trade cache lines on
// almost every call: measured slower with two cores than with one.)
func stripeHint() uint32 {
	var local byte
	return uint32(uint64(uintptr(unsafe.Pointer(&local))>>10) * 0x9E3779B97F4A7C15 >> 32)
}

// stripe returns the bucket's stripe k, creating it if need be.
func (b *bucket) stripe(k uint32) *stripe {
	return loadOrStore(&b.stripes[k], func() *stripe { return new(stripe) })
}

// loadOrStore returns *p, first setting it to mk() if it is nil. Racing
// callers all get the same value; the losers' values are dropped.
func loadOrStore[T any](p *atomic.Pointer[T], mk func() *T) *T {
	if v := p.Load(); v != nil {
		return v
	}
	if v := mk(); p.CompareAndSwap(nil, v) {
		return v
	}
	return p.Load()
}

// cell returns the histogram cell for d, clamped to the maximum.
func (s *state) cell(d time.Duration) (cell int, clamped bool) {
	if d > s.maxLatency {
		return cellOf(micros(s.maxLatency)), true
	}
	return cellOf(micros(d)), false
}

func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 {
	q := floorDiv(a, b)
	if a%b != 0 {
		q++
	}
	return q
}

// start returns the start of bucket idx.
func (s *state) start(idx int64) time.Time { return time.Unix(0, idx*s.width).UTC() }

// bucketFor returns the bucket that t falls in, creating it if need be.
func (s *state) bucketFor(t time.Time) *bucket {
	ns := unixNanos(t)
	latest := s.latest.Load()
	if latest != nil && uint64(ns-latest.start) < uint64(s.width) {
		return latest // no division: the common case
	}
	b := s.bucketAt(floorDiv(ns, s.width))
	// Only moving forward updates the cache, so late outcomes for an
	// older bucket do not make cores fight over it.
	if latest == nil || b.idx > latest.idx {
		s.latest.Store(b)
	}
	return b
}

// bucketAt returns the bucket with index idx, creating it if need be.
func (s *state) bucketAt(idx int64) *bucket {
	slot := &s.page(idx >> pageBits).slots[idx&(pageLen-1)]
	return loadOrStore(slot, func() *bucket {
		return &bucket{idx: idx, start: idx * s.width, stripes: make([]atomic.Pointer[stripe], s.stripeMask+1)}
	})
}

// page returns page num, creating it if need be.
func (s *state) page(num int64) *page {
	pages := *s.pages.Load()
	if i, found := searchPages(pages, num); found {
		return pages[i]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pages = *s.pages.Load()
	i, found := searchPages(pages, num)
	if !found {
		grown := make([]*page, 0, len(pages)+1)
		grown = append(append(append(grown, pages[:i]...), &page{num: num}), pages[i:]...)
		s.pages.Store(&grown)
		pages = grown
	}
	return pages[i]
}

func searchPages(pages []*page, num int64) (int, bool) {
	lo, hi := 0, len(pages)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if pages[m].num < num {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(pages) && pages[lo].num == num
}

// buckets yields the buckets with index in [lo, hi) in time order.
func (s *state) buckets(lo, hi int64) iter.Seq[*bucket] {
	return func(yield func(*bucket) bool) {
		for _, p := range *s.pages.Load() {
			first := p.num << pageBits
			if first+pageLen <= lo || first >= hi {
				continue
			}
			for j := range p.slots {
				b := p.slots[j].Load()
				if b == nil || b.idx < lo || b.idx >= hi {
					continue
				}
				if !yield(b) {
					return
				}
			}
		}
	}
}
