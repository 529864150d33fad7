package outcome

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// histogramBinaryVersion is the first byte of a histogram's binary form;
// a change of layout gets a new one.
const histogramBinaryVersion = 1

// maxCell is the index of the cell holding the largest microsecond value;
// no encoded cell may lie past it.
var maxCell = cellOf(math.MaxUint64)

// AppendBinary appends h's compact binary form to b: a version byte, the
// number of non-empty cells, then each cell as the distance from the
// previous one and its count, all as unsigned varints. A histogram of a
// few hundred distinct latencies takes a few hundred bytes, so stores
// can keep one per row (the call store's rollups) and merge them exactly
// when read back.
func (h *Histogram) AppendBinary(b []byte) ([]byte, error) {
	n := 0
	h.cells(func(int, int64) bool { n++; return true })
	b = append(b, histogramBinaryVersion)
	b = binary.AppendUvarint(b, uint64(n))
	prev := 0
	h.cells(func(cell int, c int64) bool {
		b = binary.AppendUvarint(b, uint64(cell-prev))
		b = binary.AppendUvarint(b, uint64(c))
		prev = cell
		return true
	})
	return b, nil
}

// MarshalBinary returns h's binary form (see AppendBinary).
func (h *Histogram) MarshalBinary() ([]byte, error) { return h.AppendBinary(nil) }

// UnmarshalBinary replaces h's contents with the histogram that
// AppendBinary wrote into data. Malformed data (an unknown version, a
// truncated varint, cells out of order or out of range, a zero count,
// bytes left over) is an error and leaves h empty.
func (h *Histogram) UnmarshalBinary(data []byte) error {
	*h = Histogram{}
	if err := decodeCells(data, h.add); err != nil {
		*h = Histogram{}
		return fmt.Errorf("decoding histogram: %w", err)
	}
	return nil
}

// MergeBinary adds the histogram that AppendBinary wrote into data to h,
// exactly, without building a histogram of it first: the call store
// merges thousands of rollups' histograms this way. Malformed data is an
// error and leaves h as it was.
func (h *Histogram) MergeBinary(data []byte) error {
	var n int64
	if err := decodeCells(data, func(_ int, c int64) { n += c }); err != nil {
		return fmt.Errorf("decoding histogram: %w", err)
	}
	if n > math.MaxInt64-h.count {
		return fmt.Errorf("decoding histogram: merging %d values into %d overflows", n, h.count)
	}
	return decodeCells(data, h.add)
}

// decodeCells calls add with each cell of data and its count.
func decodeCells(data []byte, add func(cell int, n int64)) error {
	if len(data) == 0 {
		return errors.New("empty input")
	}
	if data[0] != histogramBinaryVersion {
		return fmt.Errorf("version %d is not %d", data[0], histogramBinaryVersion)
	}
	data = data[1:]
	next := func(what string) (uint64, error) {
		v, k := binary.Uvarint(data)
		// A last byte of zero pads the varint: the same value has a
		// shorter form, and the encoding is kept canonical.
		if k <= 0 || k > 1 && data[k-1] == 0 {
			return 0, fmt.Errorf("%s: truncated or overlong varint", what)
		}
		data = data[k:]
		return v, nil
	}
	n, err := next("cell count")
	if err != nil {
		return err
	}
	// Every cell takes at least two bytes, so a count beyond that is a
	// lie, and would make us loop on nothing.
	if n > uint64(len(data)/2) {
		return fmt.Errorf("%d cells announced in %d bytes", n, len(data))
	}
	cell := 0
	var total uint64
	for i := range n {
		d, err := next("cell")
		if err != nil {
			return err
		}
		if i > 0 && d == 0 || d > uint64(maxCell-cell) {
			return fmt.Errorf("cell %d: out of order or out of range", i)
		}
		cell += int(d)
		c, err := next("count")
		if err != nil {
			return err
		}
		if c == 0 || c > math.MaxInt64-total {
			return fmt.Errorf("cell %d: count %d is zero or overflows", i, c)
		}
		total += c
		add(cell, int64(c))
	}
	if len(data) > 0 {
		return fmt.Errorf("%d bytes after the last cell", len(data))
	}
	return nil
}
