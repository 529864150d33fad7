package outcome

import (
	"bytes"
	"testing"
	"time"
)

func TestHistogramBinaryRoundTrip(t *testing.T) {
	t.Parallel()
	var h Histogram
	for _, d := range []time.Duration{0, time.Microsecond, 1500 * time.Microsecond, 3 * time.Millisecond, 3 * time.Millisecond, time.Second, 90 * time.Second} {
		h.Record(d)
	}
	b, err := h.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Histogram
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !sameCells(&h, &got) {
		t.Fatalf("round trip changed the histogram: %v != %v", cellPairs(&got), cellPairs(&h))
	}
	var empty Histogram
	b, _ = empty.MarshalBinary()
	if err := got.UnmarshalBinary(b); err != nil || got.Count() != 0 {
		t.Fatalf("empty histogram: count %d, err %v", got.Count(), err)
	}
}

func TestHistogramBinaryRejects(t *testing.T) {
	t.Parallel()
	var h Histogram
	h.Record(time.Millisecond)
	h.Record(time.Second)
	good, _ := h.MarshalBinary()
	for name, data := range map[string][]byte{
		"empty":      {},
		"version":    {2, 0},
		"truncated":  good[:len(good)-1],
		"trailing":   append(bytes.Clone(good), 0),
		"zero count": {1, 1, 5, 0},
		"repeated":   {1, 2, 5, 1, 0, 1},
		"too many":   {1, 100, 1, 1},
		"beyond max": {1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1},
	} {
		var got Histogram
		if err := got.UnmarshalBinary(data); err == nil {
			t.Errorf("%s: %x decoded without error", name, data)
		} else if got.Count() != 0 {
			t.Errorf("%s: a failed decode left %d values", name, got.Count())
		}
	}
}

func FuzzHistogramBinary(f *testing.F) {
	var h Histogram
	h.Record(time.Millisecond)
	h.Record(2 * time.Second)
	good, _ := h.MarshalBinary()
	f.Add(good)
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var h Histogram
		if h.UnmarshalBinary(data) != nil {
			return
		}
		again, _ := h.MarshalBinary()
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded %x but encodes as %x", data, again)
		}
	})
}

func TestHistogramMergeBinary(t *testing.T) {
	t.Parallel()
	var a, b, want Histogram
	for i := range 1000 {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(i*i) * time.Microsecond)
	}
	want.Merge(&a)
	want.Merge(&b)
	ab, _ := a.MarshalBinary()
	bb, _ := b.MarshalBinary()
	var got Histogram
	if err := got.MergeBinary(ab); err != nil {
		t.Fatal(err)
	}
	if err := got.MergeBinary(bb); err != nil {
		t.Fatal(err)
	}
	if !sameCells(&got, &want) {
		t.Fatal("MergeBinary differs from Merge")
	}
	before := got.Count()
	if err := got.MergeBinary(ab[:len(ab)-1]); err == nil || got.Count() != before {
		t.Fatalf("a truncated merge: err %v, count %d (was %d)", err, got.Count(), before)
	}
}
