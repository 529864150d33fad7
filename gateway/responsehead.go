package gateway

import (
	"bufio"
	"bytes"
	"errors"

	"github.com/valyala/fasthttp"
)

// errInvalidResponse marks a target's response head that two readers could
// frame differently: Content-Length twice, Content-Length beside
// Transfer-Encoding, whitespace between a field name and its colon, or a
// status outside 100-599. fasthttp would take one reading; the gateway
// answers 502 instead, as nginx does, and closes the connection, whose
// next response could start anywhere.
var errInvalidResponse = errors.New("the target's response head is malformed")

// readResponseHead reads a response head from br into h after checking it
// with checkResponseHead. fasthttp parses heads from the reader's buffer,
// so the check reads nothing twice.
func readResponseHead(br *bufio.Reader, h *fasthttp.ResponseHeader) error {
	if head := bufferedHead(br); head != nil {
		if err := checkResponseHead(head); err != nil {
			return err
		}
	}
	if err := h.Read(br); err != nil {
		return err
	}
	if code := h.StatusCode(); code < 100 || code > 599 {
		return errInvalidResponse
	}
	return nil
}

// bufferedHead fills br until it holds a whole head and returns it, blank
// line included. It returns nil when the head cannot be had that way (the
// connection ends, a deadline passes, the head is larger than the buffer):
// fasthttp's own read then reports what went wrong, as it did before.
func bufferedHead(br *bufio.Reader) []byte {
	for n := 1; ; n = br.Buffered() + 1 {
		if _, err := br.Peek(n); err != nil {
			return nil
		}
		b, _ := br.Peek(br.Buffered())
		if end := headEnd(b); end > 0 {
			return b[:end]
		}
		if br.Buffered() == br.Size() {
			return nil
		}
	}
}

// headEnd returns the length of the head at the start of b, through its
// blank line (CRLF or bare LF), or 0 when b holds no whole head. Blank
// lines before the first line are skipped, as fasthttp skips them.
func headEnd(b []byte) int {
	for i := blankLines(b); ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(b) && b[i] == '\n':
			return i + 1
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			return i + 2
		}
	}
}

// checkResponseHead applies to a response head the checks checkRequestHead
// applies to a request's: errInvalidResponse for the lines a proxy must
// not pass on as they came (RFC 9112, 5.1 and 6.3).
func checkResponseHead(head []byte) error {
	// The status line is not a field line: a reason phrase may hold " :".
	head = head[blankLines(head):]
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[i+1:]
	}
	f := scanHead(head)
	if f.spacedName || f.lengths > 1 || f.codings > 1 || (f.codings > 0 && f.lengths > 0) {
		return errInvalidResponse
	}
	return nil
}

// blankLines returns the length of the empty lines at the start of b.
func blankLines(b []byte) int {
	i := 0
	for {
		switch {
		case i < len(b) && b[i] == '\n':
			i++
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			i += 2
		default:
			return i
		}
	}
}
