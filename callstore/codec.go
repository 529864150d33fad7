package callstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
	"unsafe"
)

// The binary form of a record, used by the Writer's queue and its spool
// file: compact, quick to write on the request path, and read back
// strictly, because a spool file may be cut short by a crash or damaged
// on disk.
//
//	version byte, then in order: time (unix ns, varint), the strings
//	(uvarint length + bytes), the integers (varints), cost (8 bytes,
//	IEEE 754 little-endian), steps, headers and bodies.
const codecVersion = 1

const (
	// maxFieldBytes caps one string of a decoded record: a body is capped
	// by Capture long before this.
	maxFieldBytes = 4 << 20
	// maxListLen caps the steps and the headers of a decoded record.
	maxListLen = 1024
)

var errCorrupt = errors.New("corrupt record")

// appendRecord appends r's binary form to b.
func appendRecord(b []byte, r *Record) []byte {
	b = append(b, codecVersion)
	b = binary.AppendVarint(b, r.Time.UnixNano())
	for _, s := range [...]string{r.RequestID, r.TraceID, r.Gateway, r.Route, r.API, r.APIVersion, r.Tenant, r.KeyID,
		r.Method, r.PathTemplate, r.Path, r.Outcome, r.Reason, r.Target, r.Model, r.Provider} {
		b = appendString(b, s)
	}
	for _, v := range [...]int64{int64(r.Status), int64(r.Latency), int64(r.Upstream), int64(r.TTFB), int64(r.Attempts),
		r.BytesIn, r.BytesOut, r.InputTokens, r.OutputTokens} {
		b = binary.AppendVarint(b, v)
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Cost))
	b = binary.AppendUvarint(b, uint64(len(r.Steps)))
	for i := range r.Steps {
		s := &r.Steps[i]
		b = appendString(b, s.Kind)
		b = appendString(b, s.Target)
		b = binary.AppendVarint(b, int64(s.Status))
		b = appendString(b, s.Outcome)
		b = appendString(b, s.Reason)
		b = binary.AppendVarint(b, int64(s.Latency))
	}
	for _, hs := range [...][]Header{r.RequestHeaders, r.ResponseHeaders} {
		b = binary.AppendUvarint(b, uint64(len(hs)))
		for _, h := range hs {
			b = appendString(b, h.Name)
			b = appendString(b, h.Value)
		}
	}
	b = appendString(b, r.RequestBody)
	b = appendString(b, r.ResponseBody)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a record's binary form, remembering the first error so
// that decodeRecord reads as a list of fields. With alias set, the
// strings it returns point into the bytes it reads instead of copying
// them: the records it fills are good only while those bytes are.
type decoder struct {
	b     []byte
	err   error
	alias bool
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what)
	if n > maxFieldBytes || n > uint64(len(d.b)) {
		d.fail(what)
		return ""
	}
	var s string
	switch {
	case n == 0:
	case d.alias:
		s = unsafe.String(&d.b[0], n)
	default:
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

func (d *decoder) count(what string) int {
	n := d.uvarint(what)
	if n > maxListLen || n > uint64(len(d.b)) {
		d.fail(what)
		return 0
	}
	return int(n)
}

// decodeRecord reads one record from the whole of b into r.
func decodeRecord(b []byte, r *Record) error { return decodeRecordIn(b, r, false) }

// decodeRecordIn is decodeRecord; with alias, r's strings point into b,
// and the steps and headers reuse the arrays r held before, if large
// enough (r is the Writer's scratch, whose records no one keeps).
func decodeRecordIn(b []byte, r *Record, alias bool) error {
	var steps []Step
	var headers [2][]Header
	if alias {
		steps, headers = r.Steps, [2][]Header{r.RequestHeaders, r.ResponseHeaders}
	}
	*r = Record{}
	if len(b) == 0 || b[0] != codecVersion {
		return fmt.Errorf("%w: unknown version", errCorrupt)
	}
	d := &decoder{b: b[1:], alias: alias}
	r.Time = time.Unix(0, d.varint("time")).UTC()
	for _, p := range [...]*string{&r.RequestID, &r.TraceID, &r.Gateway, &r.Route, &r.API, &r.APIVersion, &r.Tenant, &r.KeyID,
		&r.Method, &r.PathTemplate, &r.Path, &r.Outcome, &r.Reason, &r.Target, &r.Model, &r.Provider} {
		*p = d.string("string field")
	}
	var ints [9]int64
	for i := range ints {
		ints[i] = d.varint("integer field")
	}
	if ints[0] < 0 || ints[0] > 999 || ints[4] < 0 || ints[4] > math.MaxInt32 {
		d.fail("status or attempts out of range")
	}
	r.Status, r.Attempts = int(ints[0]), int(ints[4])
	r.Latency, r.Upstream, r.TTFB = time.Duration(ints[1]), time.Duration(ints[2]), time.Duration(ints[3])
	r.BytesIn, r.BytesOut, r.InputTokens, r.OutputTokens = ints[5], ints[6], ints[7], ints[8]
	if len(d.b) < 8 {
		d.fail("cost")
	} else {
		r.Cost = math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
	}
	if n := d.count("steps"); n > 0 {
		r.Steps = resized(steps, n)
		for i := range r.Steps {
			s := &r.Steps[i]
			s.Kind = d.string("step kind")
			s.Target = d.string("step target")
			st := d.varint("step status")
			if st < 0 || st > 999 {
				d.fail("step status out of range")
			}
			s.Status = int(st)
			s.Outcome = d.string("step outcome")
			s.Reason = d.string("step reason")
			s.Latency = time.Duration(d.varint("step latency"))
		}
	}
	for k, hp := range [...]*[]Header{&r.RequestHeaders, &r.ResponseHeaders} {
		if n := d.count("headers"); n > 0 {
			hs := resized(headers[k], n)
			for i := range hs {
				hs[i].Name = d.string("header name")
				hs[i].Value = d.string("header value")
			}
			*hp = hs
		}
	}
	r.RequestBody = d.string("request body")
	r.ResponseBody = d.string("response body")
	if d.err != nil {
		return d.err
	}
	if len(d.b) != 0 {
		return fmt.Errorf("%w: %d bytes after the record", errCorrupt, len(d.b))
	}
	return nil
}

// resized returns n zero values in old's array if it is large enough,
// and in a new one otherwise.
func resized[T any](old []T, n int) []T {
	if cap(old) >= n {
		old = old[:n]
		clear(old)
		return old
	}
	return make([]T, n)
}

// appendFramed appends r to a chunk: its length as 4 bytes
// little-endian, then its binary form.
func appendFramed(chunk []byte, r *Record) []byte {
	at := len(chunk)
	chunk = append(chunk, 0, 0, 0, 0)
	chunk = appendRecord(chunk, r)
	binary.LittleEndian.PutUint32(chunk[at:], uint32(len(chunk)-at-4))
	return chunk
}

// decodeChunk appends the records of a chunk (framed records, end to end)
// to out.
func decodeChunk(chunk []byte, out []Record) ([]Record, error) {
	return decodeChunkIn(chunk, out, false)
}

// decodeChunkIn is decodeChunk; with alias, the records' strings point
// into chunk (no copy, no allocation), so they are good only while chunk
// is neither changed nor reused.
func decodeChunkIn(chunk []byte, out []Record, alias bool) ([]Record, error) {
	for len(chunk) > 0 {
		if len(chunk) < 4 {
			return out, fmt.Errorf("%w: truncated frame", errCorrupt)
		}
		n := binary.LittleEndian.Uint32(chunk)
		chunk = chunk[4:]
		if uint64(n) > uint64(len(chunk)) {
			return out, fmt.Errorf("%w: frame of %d bytes in %d", errCorrupt, n, len(chunk))
		}
		if alias && len(out) < cap(out) {
			out = out[:len(out)+1] // the slot's old arrays may be reused
		} else {
			out = append(out, Record{})
		}
		if err := decodeRecordIn(chunk[:n], &out[len(out)-1], alias); err != nil {
			return out[:len(out)-1], err
		}
		chunk = chunk[n:]
	}
	return out, nil
}

// countFrames counts the framed records of a chunk, readable or not.
func countFrames(chunk []byte) int {
	n := 0
	for len(chunk) >= 4 {
		l := binary.LittleEndian.Uint32(chunk)
		if uint64(l) > uint64(len(chunk)-4) {
			break
		}
		chunk = chunk[4+l:]
		n++
	}
	return n
}
