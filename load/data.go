package load

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync/atomic"
)

// DataOrder says how requests walk through a data file's rows.
type DataOrder string

// The orders a scenario may ask for.
const (
	// DataSequential hands rows out in file order, wrapping around; every
	// row is used once before any is used twice.
	DataSequential DataOrder = "sequential"
	// DataRandom picks a row uniformly for every request.
	DataRandom DataOrder = "random"
)

// Data is a CSV data file: a header naming the columns, then rows. It is
// read once, before load starts, and shared by all VUs.
type Data struct {
	Columns []string
	rows    [][]string
	order   DataOrder
	next    atomic.Uint64
}

// LoadData reads a CSV file with a header line.
func LoadData(path string, order DataOrder) (*Data, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("data file: %w", err)
	}
	defer f.Close()
	d, err := ReadData(f, order)
	if err != nil {
		return nil, fmt.Errorf("data file %s: %w", path, err)
	}
	return d, nil
}

// ReadData reads CSV with a header line from r.
func ReadData(r io.Reader, order DataOrder) (*Data, error) {
	switch order {
	case "":
		order = DataSequential
	case DataSequential, DataRandom:
	default:
		return nil, fmt.Errorf("data order %q: want %q or %q", order, DataSequential, DataRandom)
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("empty: want a header line naming the columns")
	}
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, c := range header {
		if !isIdent(c) {
			return nil, fmt.Errorf("line 1, column %d: column name %q: want letters, digits and _", i+1, c)
		}
		if seen[c] {
			return nil, fmt.Errorf("line 1: column %q appears twice", c)
		}
		seen[c] = true
	}
	d := &Data{Columns: header, order: order}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err // csv.ParseError names the line and column
		}
		d.rows = append(d.rows, rec)
	}
	if len(d.rows) == 0 {
		return nil, fmt.Errorf("no rows after the header")
	}
	return d, nil
}

// Len is the number of rows.
func (d *Data) Len() int { return len(d.rows) }

// Next returns the row for the next request. It is safe for concurrent use;
// rnd is the caller's own random source (used by DataRandom).
func (d *Data) Next(rnd *rand.Rand) []string {
	if d.order == DataRandom {
		return d.rows[rnd.IntN(len(d.rows))]
	}
	return d.rows[(d.next.Add(1)-1)%uint64(len(d.rows))]
}
