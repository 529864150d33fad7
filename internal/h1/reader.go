package h1

import (
	"errors"
	"io"
)

// ErrBufferFull means a Reader's buffer is full at its largest size and
// nothing could be read into it.
var ErrBufferFull = errors.New("h1: buffer full")

// Reader buffers one connection's input so that heads and bodies are
// parsed in place. The bytes not yet consumed are Buf[R:W]. It grows its
// buffer only when what arrived does not fit, up to Max, so its memory
// follows the bytes received, never a length a message announces.
//
// Slices of Buf returned by the parsing methods stay valid until the next
// Fill, which may move the unconsumed bytes to Low (or to the start of a
// larger buffer): a caller that keeps a head while reading its body sets
// Low past the head (KeepHead).
type Reader struct {
	Src io.Reader
	Buf []byte
	R   int
	W   int
	// Low is where unconsumed bytes move when space is made; bytes before
	// it are kept where they are.
	Low int
	// Max bounds the buffer's growth; 0 means it never grows.
	Max int
	// Err is the error the last read from Src returned.
	Err error
	// BeforeRead, when set, runs before each read from Src, which may
	// wait: a proxy passing a body on flushes what it has gathered.
	BeforeRead func()
}

// Buffered returns the bytes read and not consumed.
func (r *Reader) Buffered() []byte { return r.Buf[r.R:r.W] }

// Consume marks n buffered bytes as consumed.
func (r *Reader) Consume(n int) { r.R += n }

// Reset empties r for a new source, keeping its buffer.
func (r *Reader) Reset(src io.Reader) {
	r.Src, r.R, r.W, r.Low, r.Err = src, 0, 0, 0, nil
}

// KeepHead keeps the bytes before R (a head just consumed) in place
// until Release, so that reading the body does not move them.
func (r *Reader) KeepHead() { r.Low = r.R }

// Release lets the next Fill reuse the whole buffer.
func (r *Reader) Release() { r.Low = 0 }

// Grow makes the buffer at least n bytes, keeping what is buffered (the
// bytes before Low included: none are kept in place). A reader that is to
// pass a large body on reads it in fewer, larger pieces.
func (r *Reader) Grow(n int) {
	if len(r.Buf) >= n {
		return
	}
	nb := make([]byte, n)
	w := copy(nb, r.Buf[r.R:r.W])
	r.Buf, r.R, r.W, r.Low = nb, 0, w, 0
}

// Fill reads once from Src into the free space, making some first (by
// moving the unconsumed bytes down to Low, or by growing the buffer up to
// Max) when there is none. It returns the read's error; with no space to
// be had it returns ErrBufferFull.
func (r *Reader) Fill() error {
	if r.R == r.W && r.R > r.Low {
		r.R, r.W = r.Low, r.Low
	}
	if r.W == len(r.Buf) {
		switch {
		case r.R > r.Low:
			n := copy(r.Buf[r.Low:], r.Buf[r.R:r.W])
			r.R, r.W = r.Low, r.Low+n
		case len(r.Buf) < r.Max:
			// The bytes before Low are kept where they are: they live on
			// in the old buffer, which the caller's slices still point to.
			nb := make([]byte, min(max(2*len(r.Buf), 4096), r.Max))
			n := copy(nb, r.Buf[r.R:r.W])
			r.Buf, r.R, r.W, r.Low = nb, 0, n, 0
		default:
			return ErrBufferFull
		}
	}
	if r.BeforeRead != nil {
		r.BeforeRead()
	}
	n, err := r.Src.Read(r.Buf[r.W:])
	r.W += n
	if n > 0 && err == io.EOF {
		err = nil // reported by the next read
	}
	r.Err = err
	return err
}

// ReadRequest reads a request head into req and consumes it; its slices
// point into Buf. A source's error (a deadline, the end of the stream) is
// returned as it is; io.EOF only when no byte of a head had arrived.
func (r *Reader) ReadRequest(lim Limits, req *Request) error {
	return r.readHead(lim, func(b []byte) (int, error) { return ParseRequest(b, lim, req) })
}

// ReadResponse reads a response head into resp and consumes it, as
// ReadRequest does; head says the request was HEAD.
func (r *Reader) ReadResponse(lim Limits, head bool, resp *Response) error {
	return r.readHead(lim, func(b []byte) (int, error) { return ParseResponse(b, lim, head, resp) })
}

// readHead parses with parse until a whole head is buffered.
func (r *Reader) readHead(lim Limits, parse func([]byte) (int, error)) error {
	for {
		if r.R < r.W {
			n, err := parse(r.Buf[r.R:r.W])
			if err == nil {
				r.R += n
				return nil
			}
			if err != ErrIncomplete {
				return err
			}
		}
		if err := r.fillHead(lim); err != nil {
			return err
		}
	}
}

func (r *Reader) fillHead(lim Limits) error {
	err := r.Fill()
	switch {
	case err == ErrBufferFull:
		return tooLarge("head too large")
	case err == io.EOF && r.R < r.W:
		return io.ErrUnexpectedEOF
	}
	return err
}
