package wire

import (
	"io"
	"testing"
)

// oneEventReader hands out one event a read, as a provider's connection
// does when each event is written on its own.
type oneEventReader struct{ events []string }

func (r *oneEventReader) Read(p []byte) (int, error) {
	if len(r.events) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.events[0])
	r.events = r.events[1:]
	return n, nil
}

// TestSSEReaderIdle: a reader between events lends its buffers (Idle)
// and reads the next event whole with buffers taken back; with bytes of
// the next event at hand it keeps them.
func TestSSEReaderIdle(t *testing.T) {
	r := NewSSEReader(&oneEventReader{events: []string{"event: a\ndata: first\n\n", "data: second\ndata: line\n\n", "data: x\n\ndata: y\n\n"}}, 0)
	want := []string{"first", "second\nline", "x", "y"}
	for i, w := range want {
		ev, err := r.Next()
		if err != nil || string(ev.Data) != w {
			t.Fatalf("event %d: %q, %v; want %q", i, ev.Data, err, w)
		}
		buffered := r.Buffered() > 0
		r.Idle()
		if lent := r.line == nil && r.data == nil; lent == buffered {
			t.Fatalf("event %d: lent %v with %d bytes buffered", i, lent, r.Buffered())
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last event: %v, want io.EOF", err)
	}
}
