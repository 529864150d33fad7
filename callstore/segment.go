package callstore

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Calls are stored in segments: one row per batch the Writer hands over,
// holding the batch's records in their binary form (the Writer's own,
// see codec.go) with what queries need to pass over segments that cannot
// match: the time span, the sets of routes, tenants, models, APIs, keys
// and gateways in it, how many calls failed, and a Bloom filter of the
// request and trace ids. A row per call would cost SQLite a B-tree
// insert per call and per index; a row per batch keeps ingest well above
// 100,000 calls a second on one core, and queries read back recent calls
// newest first, stopping at their limit.
//
// Within a segment call i has Seq first_seq+i; segments are written one
// at a time (the write lock, see DB.Write), so Seq follows commit order
// across gateways sharing a database and `relia calls --follow` misses
// nothing.
type segment struct {
	n                int
	minTime, maxTime int64
	sets             [numSetDims]string
	failed           int
	ids              []byte
	records          []byte
}

// The dimensions a segment keeps the set of values of, in column order.
const (
	setGateway = iota
	setRoute
	setAPI
	setTenant
	setKey
	setModel
	numSetDims
)

var setColumns = [numSetDims]string{"gateways", "routes", "apis", "tenants", "key_ids", "models"}

// maxSetValues is the most values a segment's set lists; past it the
// set is "*" (any), and the segment is read for every value.
const maxSetValues = 32

// setAny is a set with too many values to list.
const setAny = "*"

// setValues returns r's value of each set dimension.
func setValues(r *Record) [numSetDims]string {
	return [numSetDims]string{r.Gateway, r.Route, r.API, r.Tenant, r.KeyID, r.Model}
}

// setNeedle is what a set column holds for value v: the values are
// written "\nv1\nv2\n", so a value is found as "\nv\n".
func setNeedle(v string) string { return "\n" + v + "\n" }

// buildSegment encodes a batch of calls as a segment. framed, when not
// nil, is the batch already in its framed form (the Writer's batch
// buffer, which recs were decoded from): it is stored as it is instead
// of encoding every record again.
func buildSegment(recs []Record, framed []byte) segment {
	s := segment{n: len(recs)}
	var sets [numSetDims][]string
	bl := newBloom(2 * len(recs))
	for i := range recs {
		r := &recs[i]
		t := r.Time.UnixNano()
		if i == 0 || t < s.minTime {
			s.minTime = t
		}
		if i == 0 || t > s.maxTime {
			s.maxTime = t
		}
		if r.Failed() {
			s.failed++
		}
		for d, v := range setValues(r) {
			if len(sets[d]) <= maxSetValues && !slices.Contains(sets[d], v) {
				sets[d] = append(sets[d], v)
			}
		}
		bl.add(r.RequestID)
		if r.TraceID != "" {
			bl.add(r.TraceID)
		}
		if framed == nil {
			s.records = appendFramed(s.records, r)
		}
	}
	if framed != nil {
		s.records = framed
	}
	for d, vs := range sets {
		s.sets[d] = setAny
		if len(vs) > maxSetValues {
			continue
		}
		listable := true
		for _, v := range vs {
			if strings.ContainsRune(v, '\n') {
				listable = false
			}
		}
		if listable {
			slices.Sort(vs)
			s.sets[d] = "\n" + strings.Join(vs, "\n") + "\n"
		}
	}
	s.ids = bl
	s.records = compressRecords(s.records)
	return s
}

// bloom is a Bloom filter: a byte giving the number of hashes, then the
// bits. Ten bits a key and seven hashes give about 1% false positives.
type bloom []byte

const bloomHashes = 7

func newBloom(keys int) bloom {
	bytes := max((keys*10+7)/8, 8)
	b := make(bloom, 1+bytes)
	b[0] = bloomHashes
	return b
}

// bloomHash returns the two hashes the filter's positions are made from:
// the halves of s's 64-bit FNV-1a hash, computed here rather than
// through hash/fnv so that hashing a batch's ids allocates nothing.
func bloomHash(s string) (uint32, uint32) {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	v := uint64(offset64)
	for i := 0; i < len(s); i++ {
		v ^= uint64(s[i])
		v *= prime64
	}
	return uint32(v), uint32(v>>32) | 1
}

func (b bloom) add(s string) {
	bits := uint32(len(b)-1) * 8
	h1, h2 := bloomHash(s)
	for i := range uint32(b[0]) {
		p := (h1 + i*h2) % bits
		b[1+p/8] |= 1 << (p % 8)
	}
}

// mayHave reports whether s may have been added; false is certain. A
// filter that is not one (damaged, or empty) may have anything.
func (b bloom) mayHave(s string) bool {
	if len(b) < 2 || b[0] == 0 || b[0] > 32 {
		return true
	}
	bits := uint32(len(b)-1) * 8
	h1, h2 := bloomHash(s)
	for i := range uint32(b[0]) {
		p := (h1 + i*h2) % bits
		if b[1+p/8]&(1<<(p%8)) == 0 {
			return false
		}
	}
	return true
}

// matches reports whether r passes q's filters; range checks on the
// segment have already passed it over where they could.
func (q *Query) matches(r *Record, lo, hi int) bool {
	if !q.From.IsZero() && r.Time.Before(q.From) || !q.To.IsZero() && !r.Time.Before(q.To) {
		return false
	}
	for _, c := range [...][2]string{
		{q.Route, r.Route}, {q.API, r.API}, {q.Tenant, r.Tenant}, {q.KeyID, r.KeyID}, {q.Model, r.Model},
		{q.Gateway, r.Gateway}, {q.Outcome, r.Outcome}, {q.RequestID, r.RequestID}, {q.TraceID, r.TraceID},
	} {
		if c[0] != "" && c[0] != c[1] {
			return false
		}
	}
	if lo > 0 && (r.Status < lo || r.Status > hi) {
		return false
	}
	if q.Failed && !r.Failed() {
		return false
	}
	if q.Text != "" {
		found := false
		for _, f := range [...]string{r.Path, r.Reason, r.RequestID, r.Route, r.Tenant, r.KeyID, r.Target, r.Model} {
			if containsFold(f, q.Text) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// containsFold reports whether sub is in s, ignoring ASCII case.
func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if strings.EqualFold(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

// forEachFramed calls f with each framed record of a segment's records,
// in order, until f returns false.
func forEachFramed(records []byte, f func(i int, rec []byte) bool) error {
	for i := 0; len(records) > 0; i++ {
		if len(records) < 4 {
			return errCorrupt
		}
		n := binary.LittleEndian.Uint32(records)
		if uint64(n) > uint64(len(records)-4) {
			return errCorrupt
		}
		if !f(i, records[4:4+n]) {
			return nil
		}
		records = records[4+n:]
	}
	return nil
}

// Segments' records are kept compressed with zstd at its fastest level:
// call records repeat themselves (routes, tenants, targets, paths), so a
// batch shrinks several times over for about a microsecond a call, and
// the database writes that many fewer pages.
var (
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err)
		}
		return e
	})
	zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
		d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxSegmentBytes))
		if err != nil {
			panic(err)
		}
		return d
	})
)

// maxSegmentBytes bounds a segment's records once decompressed.
const maxSegmentBytes = 1 << 30

// compressRecords compresses a segment's records into a buffer from
// compressed (give it back with releaseCompressed once the segment is
// written), so that a writer's batches reuse a few buffers.
func compressRecords(records []byte) []byte {
	var dst []byte
	if p, ok := compressed.Get().(*[]byte); ok {
		dst = (*p)[:0]
	}
	return zstdEncoder().EncodeAll(records, dst)
}

var compressed sync.Pool // of *[]byte

// releaseCompressed gives compressRecords' buffer back.
func releaseCompressed(b []byte) {
	if cap(b) <= 8<<20 {
		compressed.Put(&b)
	}
}

func decompressRecords(data []byte) ([]byte, error) {
	out, err := zstdDecoder().DecodeAll(data, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return out, nil
}
