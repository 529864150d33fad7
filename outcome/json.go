package outcome

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Schema is the value of the "schema" field of a serialised Recorder.
// Readers reject other values, so a change to the format that older
// readers would misread comes with a new schema name.
const Schema = "relia/outcome/v1"

// The histogram layout that Schema's cell values refer to.
const (
	lowestDiscernibleNanos = 1000
	significantDigits      = 3
)

type recorderJSON struct {
	Schema              string        `json:"schema"`
	BucketWidthNanos    int64         `json:"bucket_width_ns"`
	MaxLatencyNanos     int64         `json:"max_latency_ns"`
	LowestDiscernibleNS int64         `json:"lowest_discernible_ns"`
	SignificantDigits   int           `json:"significant_digits"`
	StatusCodes         map[int]int64 `json:"status_codes"`
	Buckets             []bucketJSON  `json:"buckets"`
}

type bucketJSON struct {
	Start         time.Time       `json:"start"`
	Classes       map[Class]int64 `json:"classes"`
	StatusClasses []int64         `json:"status_classes"`
	BytesIn       int64           `json:"bytes_in,omitempty"`
	BytesOut      int64           `json:"bytes_out,omitempty"`
	Clamped       int64           `json:"clamped,omitempty"`
	Latency       [][]uint64      `json:"latency,omitempty"`
	ServiceTime   [][]uint64      `json:"service_time,omitempty"`
}

// MarshalJSON writes the recorder in the versioned format described in
// the package documentation. Decoding the result gives a recorder whose
// queries return exactly what this one's do.
func (r *Recorder) MarshalJSON() ([]byte, error) {
	s := r.state()
	doc := recorderJSON{
		Schema:              Schema,
		BucketWidthNanos:    s.width,
		MaxLatencyNanos:     int64(s.maxLatency),
		LowestDiscernibleNS: lowestDiscernibleNanos,
		SignificantDigits:   significantDigits,
		StatusCodes:         r.StatusCodes(),
		Buckets:             []bucketJSON{},
	}
	for b := range s.buckets(math.MinInt64, math.MaxInt64) {
		sum := newSummary(time.Time{}, time.Time{})
		s.addTo(&sum, b)
		out := bucketJSON{
			Start:         s.start(b.idx),
			Classes:       map[Class]int64{},
			StatusClasses: sum.ByStatusClass[:],
			BytesIn:       sum.BytesIn,
			BytesOut:      sum.BytesOut,
			Clamped:       sum.Clamped,
			Latency:       cellPairs(sum.Latency),
		}
		for c, n := range sum.ByClass {
			if n != 0 {
				out.Classes[Class(c)] = n
			}
		}
		if !sameCells(sum.ServiceTime, sum.Latency) {
			out.ServiceTime = cellPairs(sum.ServiceTime)
		}
		doc.Buckets = append(doc.Buckets, out)
	}
	return json.Marshal(doc)
}

// cellPairs lists h's non-empty cells as [lowest value in µs, count].
func cellPairs(h *Histogram) [][]uint64 {
	var flat []uint64
	h.cells(func(cell int, n int64) bool {
		flat = append(flat, cellLow(cell), uint64(n))
		return true
	})
	pairs := make([][]uint64, len(flat)/2)
	for i := range pairs {
		pairs[i] = flat[2*i : 2*i+2 : 2*i+2]
	}
	return pairs
}

// sameCells reports whether a and b hold the same counts in every cell.
func sameCells(a, b *Histogram) bool {
	if a.Count() != b.Count() {
		return false
	}
	var ca, cb [][2]int64
	a.cells(func(cell int, n int64) bool { ca = append(ca, [2]int64{int64(cell), n}); return true })
	b.cells(func(cell int, n int64) bool { cb = append(cb, [2]int64{int64(cell), n}); return true })
	return slices.Equal(ca, cb)
}

// UnmarshalJSON replaces the recorder's contents with a serialised
// recorder's, checking the schema, the options and every count; bad
// input is an error that says what is wrong and where. It must not run
// concurrently with other methods.
func (r *Recorder) UnmarshalJSON(data []byte) error {
	s, err := decodeState(data)
	if err != nil {
		return fmt.Errorf("decoding outcome recorder: %w", err)
	}
	r.st.Store(s)
	return nil
}

func decodeState(data []byte) (*state, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var doc recorderJSON
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the recorder")
	}
	if doc.Schema != Schema {
		return nil, fmt.Errorf("schema %q is not %q", doc.Schema, Schema)
	}
	if doc.LowestDiscernibleNS != lowestDiscernibleNanos || doc.SignificantDigits != significantDigits {
		return nil, fmt.Errorf("histogram layout %dns/%d digits is not %dns/%d digits",
			doc.LowestDiscernibleNS, doc.SignificantDigits, lowestDiscernibleNanos, significantDigits)
	}
	if doc.BucketWidthNanos <= 0 || doc.MaxLatencyNanos <= 0 {
		return nil, fmt.Errorf("bucket_width_ns %d and max_latency_ns %d must be positive",
			doc.BucketWidthNanos, doc.MaxLatencyNanos)
	}
	s, err := newState(Options{
		BucketWidth: time.Duration(doc.BucketWidthNanos),
		MaxLatency:  time.Duration(doc.MaxLatencyNanos),
	})
	if err != nil {
		return nil, err
	}
	var codes [600]int64
	for code, n := range doc.StatusCodes {
		if code < 100 || code > 599 || n < 0 {
			return nil, fmt.Errorf("status_codes: %d: %d responses: want a status 100-599 and a count >= 0", code, n)
		}
		codes[code] = n
	}
	s.addStatusCodes(codes)
	prev := int64(math.MinInt64)
	for i, b := range doc.Buckets {
		idx, err := s.decodeBucket(b, prev)
		if err != nil {
			return nil, fmt.Errorf("buckets[%d]: %w", i, err)
		}
		prev = idx
	}
	return s, nil
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func (s *state) decodeBucket(in bucketJSON, prev int64) (idx int64, err error) {
	if in.Start.IsZero() || in.Start.Before(minTime) || in.Start.After(maxTime) {
		return 0, fmt.Errorf("start %s is missing or outside the years 1678-2262", in.Start)
	}
	ns := in.Start.UnixNano()
	if ns%s.width != 0 {
		return 0, fmt.Errorf("start %s is not on a %s boundary", in.Start, time.Duration(s.width))
	}
	idx = ns / s.width
	if idx <= prev {
		return 0, fmt.Errorf("start %s is not after the previous bucket's", in.Start)
	}
	if in.BytesIn < 0 || in.BytesOut < 0 || in.Clamped < 0 {
		return 0, fmt.Errorf("bytes_in %d, bytes_out %d and clamped %d must not be negative",
			in.BytesIn, in.BytesOut, in.Clamped)
	}
	if len(in.StatusClasses) != statusClasses {
		return 0, fmt.Errorf("status_classes has %d counts, want %d", len(in.StatusClasses), statusClasses)
	}
	maxCell := cellOf(micros(s.maxLatency))
	for _, cells := range [][][]uint64{in.Latency, in.ServiceTime} {
		for j, c := range cells {
			if len(c) != 2 {
				return 0, fmt.Errorf("cell %v is not a pair [lowest value in us, count]", c)
			}
			cell := cellOf(c[0])
			switch {
			case cellLow(cell) != c[0]:
				return 0, fmt.Errorf("cell %dus is not the lowest value of a cell (%dus is)", c[0], cellLow(cell))
			case cell > maxCell:
				return 0, fmt.Errorf("cell %dus is above max latency %s", c[0], s.maxLatency)
			case c[1] > math.MaxInt64:
				return 0, fmt.Errorf("cell %dus: count %d is above 2^63-1", c[0], c[1])
			case j > 0 && c[0] <= cells[j-1][0]:
				return 0, fmt.Errorf("cell %dus does not come after cell %dus", c[0], cells[j-1][0])
			}
		}
	}

	var add stripe
	for class, n := range in.Classes {
		if n < 0 {
			return 0, fmt.Errorf("classes: %s: count %d is negative", class, n)
		}
		add.byClass[class] = n
	}
	for sc, n := range in.StatusClasses {
		if n < 0 {
			return 0, fmt.Errorf("status_classes[%d]: count %d is negative", sc, n)
		}
		add.byStatusClass[sc] = n
	}
	add.bytesIn, add.bytesOut, add.clamped = in.BytesIn, in.BytesOut, in.Clamped
	var layers [numLayers]Histogram
	lat, svc := layerSame, layerSame
	if in.ServiceTime != nil {
		lat, svc = layerLatency, layerService
	}
	for _, c := range in.Latency {
		layers[lat].add(cellOf(c[0]), int64(c[1]))
	}
	if svc != layerSame {
		for _, c := range in.ServiceTime {
			layers[svc].add(cellOf(c[0]), int64(c[1]))
		}
	}
	s.add(s.bucketAt(idx), &add, &layers)
	return idx, nil
}
