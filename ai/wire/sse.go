package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// DefaultMaxEvent is the largest Server-Sent Event an SSEReader buffers
// when its limit is left zero: far above any chat chunk, small enough
// that a hostile stream cannot grow relia's memory without bound.
const DefaultMaxEvent = 1 << 20

// ErrEventTooLarge is returned by SSEReader.Next for an event whose data
// exceeds the reader's limit.
var ErrEventTooLarge = errors.New("server-sent event too large")

// SSEEvent is one Server-Sent Event: its event name (empty for the
// default "message") and its data, the data lines joined by "\n".
type SSEEvent struct {
	Name string
	Data []byte
}

// SSEReader reads Server-Sent Events (the WHATWG HTML "server-sent
// events" format: field lines ended by LF, CRLF or CR, events ended by a
// blank line) from a stream. Comments and the id and retry fields are
// read and dropped. The data of the event Next returns is valid until the
// next call.
type SSEReader struct {
	src io.Reader
	// inPlace says src is also a Pieces: the reader reads the source's
	// buffer in place and holds no buffer of its own.
	inPlace bool
	buf     []byte // src's bytes read, when src is a plain io.Reader
	pend    []byte // the bytes read and not yet consumed
	max     int
	data    []byte
	name    []byte
	line    []byte
	// bufs holds line and data while Idle lends them out (nil then).
	bufs *sseBufs
}

// sseBufs is an SSEReader's line and data buffers as Idle lends them.
type sseBufs struct{ line, data []byte }

// idleSSEBufs holds the buffers of readers whose streams wait (Idle).
var idleSSEBufs sync.Pool

// maxIdleSSEBuf is the largest buffer Idle lends out; a larger one goes.
const maxIdleSSEBuf = 16 << 10

// Idle lends the reader's line and data buffers to the other readers
// while its stream waits with no event under way (Buffered is 0): the
// last event's Data is not valid after it. Thousands of streams that
// wait then hold none; the next event takes a pair back.
func (r *SSEReader) Idle() {
	if len(r.pend) > 0 || cap(r.line)+cap(r.data) == 0 || cap(r.line) > maxIdleSSEBuf || cap(r.data) > maxIdleSSEBuf {
		return
	}
	b := r.bufs
	if b == nil {
		b = new(sseBufs)
	}
	b.line, b.data = r.line[:0], r.data[:0]
	r.line, r.data, r.bufs = nil, nil, nil
	idleSSEBufs.Put(b)
}

// takeBufs takes a line and a data buffer that an idle reader lent, if
// the reader has none.
func (r *SSEReader) takeBufs() {
	if r.line != nil || r.data != nil {
		return
	}
	if b, ok := idleSSEBufs.Get().(*sseBufs); ok {
		r.line, r.data, r.bufs = b.line, b.data, b
		b.line, b.data = nil, nil
	}
}

// Pieces is a stream that lends its bytes in place: Next returns the next
// piece as a slice of the stream's own buffer, valid until the next call,
// and io.EOF at the end. internal/h1's Body is one; a provider stream
// read through it needs no second buffer, which counts when thousands
// of streams wait for their next token.
type Pieces interface {
	Next() ([]byte, error)
}

// sseBuffer is the read buffer of an SSEReader over a plain io.Reader.
const sseBuffer = 4096

// NewSSEReader returns a reader of r that refuses events whose data is
// larger than max bytes (zero means DefaultMaxEvent). When r is also a
// Pieces, its pieces are read in place.
func NewSSEReader(r io.Reader, max int) *SSEReader {
	if max <= 0 {
		max = DefaultMaxEvent
	}
	_, inPlace := r.(Pieces)
	return &SSEReader{src: r, inPlace: inPlace, max: max}
}

// fill reads the next bytes of the stream into pend.
func (r *SSEReader) fill() error {
	if r.inPlace {
		pieces := r.src.(Pieces)
		for {
			p, err := pieces.Next()
			if len(p) > 0 {
				r.pend = p
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
	if r.buf == nil {
		r.buf = make([]byte, sseBuffer)
	}
	for empty := 0; ; empty++ {
		n, err := r.src.Read(r.buf)
		if n > 0 {
			r.pend = r.buf[:n]
			return nil
		}
		if err != nil {
			return err
		}
		if empty >= 100 {
			return io.ErrNoProgress
		}
	}
}

// Next returns the next event. At the end of the stream it returns
// io.EOF, or io.ErrUnexpectedEOF when the stream ended inside an event
// (a truncated stream: the event is not returned, as the format says).
func (r *SSEReader) Next() (SSEEvent, error) {
	r.takeBufs()
	r.data = r.data[:0]
	r.name = r.name[:0]
	hasData, any := false, false
	for {
		line, err := r.readLine()
		if err != nil {
			if err == io.EOF && any {
				return SSEEvent{}, io.ErrUnexpectedEOF
			}
			return SSEEvent{}, err
		}
		if len(line) == 0 {
			if !hasData {
				r.name = r.name[:0]
				any = false
				continue // an event with no data is not dispatched
			}
			if len(r.pend) == 0 {
				// No hold on a Pieces source's buffer, which it may
				// lend out while the stream waits.
				r.pend = nil
			}
			return SSEEvent{Name: string(r.name), Data: r.data}, nil
		}
		any = true
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.max {
				return SSEEvent{}, fmt.Errorf("reading event: %w (over %d bytes)", ErrEventTooLarge, r.max)
			}
			r.data = append(r.data, value...)
			hasData = true
		case "event":
			r.name = append(r.name[:0], value...)
		}
	}
}

// readLine returns the next line without its end (LF, CRLF or CR),
// bounded by the reader's limit. The line is found with IndexByte, not
// a byte at a time (a token's chunk is a line of about 200 bytes), and
// returned in place when it lies whole in what was read: it is valid
// until the next read.
func (r *SSEReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		if len(r.pend) == 0 {
			if err := r.fill(); err != nil {
				if err == io.EOF && len(r.line) > 0 {
					return nil, io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		seg, end := r.pend, bytes.IndexByte(r.pend, '\n')
		if end >= 0 {
			seg = r.pend[:end]
		}
		if cr := bytes.IndexByte(seg, '\r'); cr >= 0 {
			seg, end = seg[:cr], cr
		}
		if len(r.line)+len(seg) > r.max+16 {
			return nil, fmt.Errorf("reading event: %w (a line over %d bytes)", ErrEventTooLarge, r.max)
		}
		if end < 0 { // the line goes on in the next read
			r.line = append(r.line, seg...)
			r.pend = nil
			continue
		}
		line := seg
		if len(r.line) > 0 {
			r.line = append(r.line, seg...)
			line = r.line
		}
		cr := r.pend[end] == '\r'
		r.pend = r.pend[end+1:]
		if cr {
			// A CR ends the line; an LF right after it belongs to it.
			if len(r.pend) == 0 {
				if len(r.line) == 0 {
					// The read that looks for the LF may reuse the bytes
					// line lies in.
					r.line = append(r.line, line...)
					line = r.line
				}
				if r.fill() != nil {
					return line, nil // the error comes back on the next read
				}
			}
			if r.pend[0] == '\n' {
				r.pend = r.pend[1:]
			}
		}
		return line, nil
	}
}

// Buffered returns how many bytes of the stream the reader holds that
// Next has not returned yet: a caller writing events on may hold its
// flush while more are already here.
func (r *SSEReader) Buffered() int { return len(r.pend) }

// AppendSSE appends one event to dst in the form providers send: an
// "event:" line when name is set, one "data:" line per line of data, and
// a blank line.
func AppendSSE(dst []byte, name string, data []byte) []byte {
	if name != "" {
		dst = append(dst, "event: "...)
		dst = append(dst, name...)
		dst = append(dst, '\n')
	}
	for {
		i := bytes.IndexByte(data, '\n')
		dst = append(dst, "data: "...)
		if i < 0 {
			dst = append(dst, data...)
			break
		}
		dst = append(dst, data[:i]...)
		dst = append(dst, '\n')
		data = data[i+1:]
	}
	return append(dst, '\n', '\n')
}

// WriteSSE writes one event to w (see AppendSSE).
func WriteSSE(w io.Writer, name string, data []byte) error {
	_, err := w.Write(AppendSSE(make([]byte, 0, len(data)+len(name)+16), name, data))
	return err
}

// Done is the data of the last event of an OpenAI chat completion stream.
var Done = []byte("[DONE]")
