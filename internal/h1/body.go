package h1

import (
	"bytes"
	"errors"
	"io"
)

// MaxChunkLine bounds a chunk-size line, extensions and CRLF included.
const MaxChunkLine = 4 << 10

// ParseChunkLine parses the chunk-size line at the start of b (RFC 9112,
// section 7.1): hexadecimal digits, at most 15 of them, with no sign and
// no 0x; then chunk extensions, each `;name` or `;name=value` (a token or
// a quoted string) with optional whitespace before the `;` and around the
// `=`; then CRLF. It returns the size and the line's length, or
// ErrIncomplete when b holds no whole line yet.
func ParseChunkLine(b []byte) (size int64, n int, err error) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		if len(b) >= MaxChunkLine {
			return 0, 0, tooLarge("chunk-size line too long")
		}
		return 0, 0, ErrIncomplete
	}
	if end+1 > MaxChunkLine {
		return 0, 0, tooLarge("chunk-size line too long")
	}
	if end == 0 || b[end-1] != '\r' {
		return 0, 0, malformed(KindFraming, "chunk-size line not ended by CRLF")
	}
	line := b[:end-1]
	i := 0
	for ; i < len(line); i++ {
		d, ok := unhex(line[i])
		if !ok {
			break
		}
		if i == 15 {
			return 0, 0, malformed(KindFraming, "chunk size too large")
		}
		size = size<<4 | int64(d)
	}
	if rest := skipWS(line[i:]); i == 0 || len(rest) > 0 && rest[0] != ';' {
		// No digits, or something else than an extension after them: 0x5.
		return 0, 0, malformed(KindFraming, "bad chunk size")
	}
	if !validChunkExt(line[i:]) {
		return 0, 0, malformed(KindFraming, "bad chunk extension")
	}
	return size, end + 1, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// validChunkExt checks *( BWS ";" BWS name [ BWS "=" BWS value ] ).
func validChunkExt(b []byte) bool {
	for len(b) > 0 {
		b = skipWS(b)
		if len(b) == 0 || b[0] != ';' {
			return false
		}
		b = skipWS(b[1:])
		n := tokenLen(b)
		if n == 0 {
			return false
		}
		b = skipWS(b[n:])
		if len(b) == 0 || b[0] != '=' {
			continue
		}
		b = skipWS(b[1:])
		if len(b) > 0 && b[0] == '"' {
			n = quotedLen(b)
		} else {
			n = tokenLen(b)
		}
		if n == 0 {
			return false
		}
		b = b[n:]
	}
	return true
}

func skipWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func tokenLen(b []byte) int {
	n := 0
	for n < len(b) && tokenChars[b[n]] {
		n++
	}
	return n
}

// quotedLen returns the length of the quoted string at the start of b, or
// 0 when it is not one.
func quotedLen(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) || (b[i+1] < ' ' && b[i+1] != '\t') || b[i+1] == 0x7f {
				return 0
			}
			i++
		case (c < ' ' && c != '\t') || c == 0x7f:
			return 0
		}
	}
	return 0
}

// ParseTrailers parses a trailer section (field lines through an empty
// line) at the start of b, appending its fields to dst, at most
// lim.Headers of them in lim.HeadBytes. It returns ErrIncomplete when b
// does not yet hold the whole section.
func ParseTrailers(b []byte, lim Limits, dst []Header) ([]Header, int, error) {
	var end int
	if len(b) >= 2 && b[0] == '\r' && b[1] == '\n' {
		end = 2
	} else {
		e, err := headEnd(b, lim)
		if err != nil {
			return dst, 0, err
		}
		end = e
	}
	dst, err := appendFields(dst, b[:end], lim.Headers)
	return dst, end, err
}

// Body reads a message body framed as its head says, from the Reader the
// head came from, and never reads past its end: the next message's bytes
// stay in the Reader. A chunked body is decoded strictly; its trailer
// fields are in Trailers once Next or Read has returned io.EOF, as slices
// of the Reader's buffer, valid until the next read from it.
type Body struct {
	r       *Reader
	framing Framing
	left    int64 // Length: bytes left; Chunked: bytes left of this chunk
	state   uint8
	lim     Limits
	err     error
	// N is how many body bytes (chunk data, without framing) were
	// returned so far.
	N int64
	// Trailers are the chunked body's trailer fields.
	Trailers []Header
	// bufferedOnly: fill reads nothing (SkipBuffered).
	bufferedOnly bool
}

// errNotBuffered is fill's answer while SkipBuffered reads only what is
// buffered.
var errNotBuffered = errors.New("h1: the body's next bytes are not buffered")

const (
	stateData     = iota // in a body of known length, or a chunk's data
	stateSize            // before a chunk-size line
	stateDataCRLF        // after a chunk's data
	stateTrailers        // after the last chunk
	stateDone            // the body has been read
)

// Reset starts reading a body framed as head says from r; lim bounds a
// trailer section.
func (b *Body) Reset(r *Reader, framing Framing, length int64, lim Limits) {
	*b = Body{r: r, framing: framing, left: length, lim: lim, Trailers: b.Trailers[:0]}
	switch framing {
	case NoBody:
		b.state = stateDone
	case Length:
		if length == 0 {
			b.state = stateDone
		}
	case Chunked:
		b.state = stateSize
	}
}

// Framing returns the body's framing.
func (b *Body) Framing() Framing { return b.framing }

// Remaining returns the bytes left of a body of known length; -1 for
// other framings.
func (b *Body) Remaining() int64 {
	if b.framing != Length {
		return -1
	}
	if b.state == stateDone {
		return 0
	}
	return b.left
}

// Done reports whether the body has been read to its end.
func (b *Body) Done() bool { return b.state == stateDone }

// Err returns the error that ended the body early, if any.
func (b *Body) Err() error { return b.err }

// Waits reports whether Next must read from the source before it can
// return anything (a piece, the end, an error): nothing of the body is
// buffered but, at most, the CRLF that ends a chunk's data. A reader
// that waits for many bodies at once waits for the source where it likes
// (the AI gateway's streams, with a shallow stack) and then calls Next.
func (b *Body) Waits() bool {
	if b.err != nil || b.state == stateDone {
		return false
	}
	p := b.r.Buf[b.r.R:b.r.W]
	if b.state == stateDataCRLF && len(p) <= 2 {
		return string(p) == "\r\n"[:len(p)]
	}
	return len(p) == 0
}

// Next returns the next piece of the body as a slice of the Reader's
// buffer, valid until the next call, reading from the source when nothing
// is buffered; io.EOF after the last. A body that ends early ends with
// io.ErrUnexpectedEOF; a malformed chunked body with an *Error.
func (b *Body) Next() ([]byte, error) {
	for {
		if b.err != nil {
			return nil, b.err
		}
		r := b.r
		switch b.state {
		case stateDone:
			return nil, io.EOF
		case stateData:
			if r.R == r.W {
				if err := b.fill(); err != nil {
					if err == io.EOF && b.framing == UntilClose {
						b.state = stateDone
						return nil, io.EOF
					}
					return nil, err
				}
				continue
			}
			return b.take(r.W - r.R), nil
		case stateSize:
			size, n, err := ParseChunkLine(r.Buf[r.R:r.W])
			if err == ErrIncomplete {
				if err := b.fill(); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				b.err = err
				return nil, err
			}
			r.R += n
			if size == 0 {
				b.state = stateTrailers
			} else {
				b.state, b.left = stateData, size
			}
		case stateDataCRLF:
			if r.W-r.R < 2 {
				if err := b.fill(); err != nil {
					return nil, err
				}
				continue
			}
			if r.Buf[r.R] != '\r' || r.Buf[r.R+1] != '\n' {
				b.err = malformed(KindFraming, "chunk data not ended by CRLF")
				return nil, b.err
			}
			r.R += 2
			b.state = stateSize
		case stateTrailers:
			tr, n, err := ParseTrailers(r.Buf[r.R:r.W], b.lim, b.Trailers[:0])
			if err == ErrIncomplete {
				if err := b.fill(); err != nil {
					return nil, err
				}
				continue
			}
			if err != nil {
				b.err = err
				return nil, err
			}
			r.R += n
			b.Trailers = tr
			b.state = stateDone
		}
	}
}

// take consumes up to n buffered bytes of data, no more than the body or
// chunk has left, and returns them.
func (b *Body) take(n int) []byte {
	r := b.r
	if b.framing != UntilClose && int64(n) > b.left {
		n = int(b.left)
	}
	p := r.Buf[r.R : r.R+n]
	r.R += n
	b.N += int64(n)
	if b.framing != UntilClose {
		b.left -= int64(n)
		if b.left == 0 {
			if b.framing == Length {
				b.state = stateDone
			} else {
				b.state = stateDataCRLF
			}
		}
	}
	return p
}

// fill reads more, keeping the error: the end of the stream inside a
// framed body is io.ErrUnexpectedEOF.
func (b *Body) fill() error {
	if b.bufferedOnly {
		return errNotBuffered
	}
	err := b.r.Fill()
	switch {
	case err == nil:
		return nil
	case err == io.EOF && b.framing == UntilClose:
		return io.EOF
	case err == io.EOF:
		err = io.ErrUnexpectedEOF
	case err == ErrBufferFull:
		err = tooLarge("chunk-size line or trailer section too large")
	}
	b.err = err
	return err
}

// Read copies the next piece of the body into p.
func (b *Body) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r := b.r
	if b.state == stateData && r.R < r.W {
		// Straight from the buffer, no more than p holds.
		return copy(p, b.take(min(r.W-r.R, len(p)))), nil
	}
	// Let Next do the framing, then give back what p cannot hold.
	q, err := b.Next()
	if err != nil {
		return 0, err
	}
	n := copy(p, q)
	if n < len(q) {
		extra := len(q) - n
		r.R -= extra
		b.N -= int64(extra)
		if b.framing != UntilClose {
			b.left += int64(extra)
		}
		b.state = stateData
	}
	return n, nil
}

// SkipBuffered reads the body to its end from the bytes the Reader holds
// already, discarding it, and reports whether it got there; it never
// reads from the source. A stream that ended in its data ("data:
// [DONE]") has its chunked body's last chunk read so, when it came with
// the last event, and its connection can serve the next exchange.
func (b *Body) SkipBuffered() bool {
	b.bufferedOnly = true
	defer func() { b.bufferedOnly = false }()
	for {
		if _, err := b.Next(); err != nil {
			return err == io.EOF
		}
	}
}

// ReadMore reads once from the source into the Reader's buffer, for a
// caller that knows bytes are waiting there (SkipBuffered again then
// goes on with them). It waits as the source's read does otherwise.
func (b *Body) ReadMore() error {
	if b.err != nil {
		return b.err
	}
	return b.fill()
}

// Skip reads the body to its end, discarding it.
func (b *Body) Skip() error {
	for {
		if _, err := b.Next(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}
