package h1

import (
	"bytes"
	"errors"
	"fmt"
)

// ErrIncomplete means the buffer does not yet hold a whole head: read more
// and parse again from the start.
var ErrIncomplete = errors.New("h1: incomplete head")

// Kind says which part of a message was at fault, so that a server can
// name the reason of its refusal.
type Kind uint8

// The kinds of Error.
const (
	// KindRequestLine: the request or status line is malformed.
	KindRequestLine Kind = iota + 1
	// KindTarget: the request target is in none of the four forms.
	KindTarget
	// KindVersion: the HTTP version is not 1.x.
	KindVersion
	// KindHeader: a field line is malformed (its name, its value, line
	// folding, a bare CR or LF).
	KindHeader
	// KindHost: Host is missing from an HTTP/1.1 request, or repeated.
	KindHost
	// KindFraming: where the body ends cannot be told reliably
	// (Content-Length and Transfer-Encoding), or a chunked body is
	// malformed.
	KindFraming
	// KindTooLarge: the head, a chunk-size line or a trailer section is
	// over its limit.
	KindTooLarge
)

// Error is a message that is malformed or over a limit; Status is the
// answer a server gives it (400, 431, 501, 505).
type Error struct {
	Status int
	Kind   Kind
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("h1: %s (%d)", e.Reason, e.Status) }

func malformed(kind Kind, reason string) error {
	return &Error{Status: 400, Kind: kind, Reason: reason}
}

func tooLarge(reason string) error { return &Error{Status: 431, Kind: KindTooLarge, Reason: reason} }

// Limits bound what a head may hold.
type Limits struct {
	// HeadBytes bounds the request or status line and the header fields
	// together, CRLFs included.
	HeadBytes int
	// Headers bounds the number of header fields.
	Headers int
}

// DefaultLimits are 16 KiB and 100 fields.
var DefaultLimits = Limits{HeadBytes: 16 << 10, Headers: 100}

// Header is one field, both parts slices of the parsed buffer; Value has
// its surrounding whitespace removed.
type Header struct {
	Name, Value []byte
}

// Framing is how a message's body is delimited.
type Framing uint8

const (
	// NoBody: the message ends with its head.
	NoBody Framing = iota
	// Length: Content-Length bytes follow.
	Length
	// Chunked: a chunked body follows.
	Chunked
	// UntilClose: the body runs until the connection closes (responses
	// only).
	UntilClose
)

// Head is what a request and a response head have in common.
type Head struct {
	Headers []Header
	// Framing and ContentLength say where the body ends.
	Framing       Framing
	ContentLength int64
	// Minor is the HTTP/1.x minor version.
	Minor int
	// Close: the sender closes the connection after this message
	// (Connection: close, or HTTP/1.0 without keep-alive).
	Close bool
	// Upgrade: Connection names upgrade and an Upgrade field is present.
	Upgrade bool
}

// Get returns the value of the first field named name (case-insensitive)
// and whether there is one.
func (h *Head) Get(name string) ([]byte, bool) {
	for i := range h.Headers {
		if equalFold(h.Headers[i].Name, name) {
			return h.Headers[i].Value, true
		}
	}
	return nil, false
}

// Request is a parsed request head.
type Request struct {
	Head
	Method, Target []byte
}

// Response is a parsed response head.
type Response struct {
	Head
	Status int
	Reason []byte
}

// ParseRequest parses the request head at the start of b into r, reusing
// r's header slice, and returns the head's length. The slices in r point
// into b. It follows RFC 9112 strictly where laxness lets a request mean
// one thing to relia and another to the next hop: obsolete line folding,
// whitespace before a field's colon, bare CR or LF, a Content-Length that
// is not one number, Transfer-Encoding with Content-Length, and a
// Transfer-Encoding that does not end in chunked are all refused.
func ParseRequest(b []byte, lim Limits, r *Request) (int, error) {
	end, err := headEnd(b, lim)
	if err != nil {
		return 0, err
	}
	line, rest := cutLine(b[:end])
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return 0, malformed(KindRequestLine, "bad method")
	}
	r.Method = line[:sp]
	line = line[sp+1:]
	sp = bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return 0, malformed(KindRequestLine, "bad request line")
	}
	r.Target = line[:sp]
	version := line[sp+1:]
	if bytes.IndexByte(version, ' ') >= 0 {
		// "GET /a b HTTP/1.1": a space inside the target.
		return 0, malformed(KindTarget, "space in the request target")
	}
	// The version first: HTTP/2's preface ("PRI * HTTP/2.0") is a 505,
	// which a server may take for h2c with prior knowledge.
	minor, ok := parseVersion(version)
	if !ok {
		if len(version) < 5 || string(version[:5]) != "HTTP/" {
			return 0, malformed(KindRequestLine, "bad request line")
		}
		return 0, &Error{Status: 505, Kind: KindVersion, Reason: "unsupported HTTP version"}
	}
	if !validTarget(r.Method, r.Target) {
		return 0, malformed(KindTarget, "bad request target")
	}
	r.Minor = minor
	if err := r.parseFields(rest, lim); err != nil {
		return 0, err
	}
	if err := r.frame(true); err != nil {
		return 0, err
	}
	hosts := 0
	for i := range r.Headers {
		if equalFold(r.Headers[i].Name, "Host") {
			hosts++
		}
	}
	switch {
	case hosts > 1:
		return 0, malformed(KindHost, "Host repeated")
	case hosts == 0 && minor == 1 && r.Target[0] == '/':
		// An absolute-form target names the host itself.
		return 0, malformed(KindHost, "missing Host")
	}
	return end, nil
}

// ParseResponse parses the response head at the start of b into r. A
// response to HEAD, and 1xx, 204 and 304 responses, have no body whatever
// their fields say; the caller tells head.
func ParseResponse(b []byte, lim Limits, head bool, r *Response) (int, error) {
	end, err := headEnd(b, lim)
	if err != nil {
		return 0, err
	}
	line, rest := cutLine(b[:end])
	if len(line) < 12 || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, malformed(KindRequestLine, "bad status line")
	}
	minor, ok := parseVersion(line[:8])
	if !ok {
		return 0, malformed(KindVersion, "bad HTTP version")
	}
	r.Minor = minor
	status := 0
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, malformed(KindRequestLine, "bad status code")
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 || status > 599 {
		return 0, malformed(KindRequestLine, "bad status code")
	}
	r.Status = status
	r.Reason = nil
	if len(line) > 13 {
		r.Reason = line[13:]
		for _, c := range r.Reason {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return 0, malformed(KindRequestLine, "bad reason phrase")
			}
		}
	}
	if err := r.parseFields(rest, lim); err != nil {
		return 0, err
	}
	if err := r.frame(false); err != nil {
		return 0, err
	}
	if head || status < 200 || status == 204 || status == 304 {
		r.Framing, r.ContentLength = NoBody, 0
	}
	return end, nil
}

// validTarget accepts the four forms of RFC 9112 section 3.2: origin
// ("/path?query"), absolute ("http://host/path"), authority ("host:port",
// CONNECT only) and asterisk ("*", OPTIONS only).
func validTarget(method, target []byte) bool {
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	switch {
	case target[0] == '/':
		return true
	case string(method) == "CONNECT":
		i := bytes.LastIndexByte(target, ':')
		return i > 0 && i < len(target)-1 && bytes.IndexByte(target, '/') < 0
	case string(target) == "*":
		return string(method) == "OPTIONS"
	}
	i := bytes.Index(target, []byte("://"))
	return i > 0 && isScheme(target[:i]) && i+3 < len(target)
}

func isScheme(b []byte) bool {
	for i, c := range b {
		letter := c|0x20 >= 'a' && c|0x20 <= 'z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// headEnd returns the length of the head at the start of b, through its
// empty line: the first empty line after the first line. It finds the
// lines' ends once, with one byte search a line.
func headEnd(b []byte, lim Limits) (int, error) {
	end := -1
	for start := 0; ; {
		k := bytes.IndexByte(b[start:], '\n')
		if k < 0 {
			break
		}
		j := start + k
		// A line ended by a bare LF would leave the head unfinished until
		// the limit: refuse it at once.
		if j == 0 || b[j-1] != '\r' {
			return 0, malformed(KindHeader, "bare LF")
		}
		if j == start+1 && start > 0 {
			end = j + 1
			break
		}
		start = j + 1
	}
	if end < 0 {
		if len(b) >= lim.HeadBytes {
			return 0, tooLarge("head too large")
		}
		return 0, ErrIncomplete
	}
	if end > lim.HeadBytes {
		return 0, tooLarge("head too large")
	}
	return end, nil
}

// cutLine splits the first line (without its CRLF) from the rest.
func cutLine(b []byte) (line, rest []byte) {
	i := bytes.Index(b, []byte("\r\n"))
	return b[:i], b[i+2:]
}

func parseVersion(v []byte) (minor int, ok bool) {
	if len(v) != 8 || string(v[:7]) != "HTTP/1." || v[7] < '0' || v[7] > '9' {
		return 0, false
	}
	return int(v[7] - '0'), true
}

// parseFields reads the header fields of a head, rest being everything
// after the first line through the final CRLF CRLF.
func (h *Head) parseFields(rest []byte, lim Limits) error {
	var err error
	h.Headers, err = appendFields(h.Headers[:0], rest, lim.Headers)
	return err
}

// appendFields parses field lines, each ended by CRLF, up to and
// including an empty line, appending them to dst; at most max in all.
// Line folding, a name that is not a token (a space inside it or before
// the colon), a line without a colon and control characters in a value
// are refused.
//
// rest ends with the empty line's CRLF and holds no bare LF (headEnd), so
// each line is read in one pass: its name while the bytes are token
// characters, then its value up to the CR.
func appendFields(dst []Header, rest []byte, max int) ([]Header, error) {
	for {
		if rest[0] == '\r' && rest[1] == '\n' {
			return dst, nil
		}
		if rest[0] == ' ' || rest[0] == '\t' {
			return dst, malformed(KindHeader, "obsolete line folding")
		}
		colon := 0
		for tokenChars[rest[colon]] {
			colon++
		}
		if colon == 0 || rest[colon] != ':' {
			return dst, malformed(KindHeader, "bad header field name")
		}
		// One table test a byte: the value's end and a bad character both
		// stop the scan, and only then are they told apart.
		e := colon + 1
		for !valueStops[rest[e]] {
			e++
		}
		if rest[e] != '\r' || rest[e+1] != '\n' {
			return dst, malformed(KindHeader, "bad header field value")
		}
		if len(dst) == max {
			return dst, tooLarge("too many header fields")
		}
		dst = append(dst, Header{Name: rest[:colon], Value: trimOWS(rest[colon+1 : e])})
		rest = rest[e+2:]
	}
}

// frame works out the body's framing and the connection's fate from the
// fields, refusing the ambiguous combinations a smuggling attack relies on.
func (h *Head) frame(request bool) error {
	h.Framing, h.ContentLength = NoBody, 0
	if !request {
		h.Framing, h.ContentLength = UntilClose, -1
	}
	h.Close, h.Upgrade = h.Minor == 0, false
	var haveLength, haveTE, connUpgrade, upgradeField bool
	for i := range h.Headers {
		f := &h.Headers[i]
		switch {
		case equalFold(f.Name, "Content-Length"):
			// One field with one number: a repeated field, even of the
			// same value, is one some readers sum, join or refuse.
			n, ok := parseLength(f.Value)
			if !ok || haveLength {
				return malformed(KindFraming, "bad Content-Length")
			}
			haveLength, h.ContentLength = true, n
		case equalFold(f.Name, "Transfer-Encoding"):
			// One field whose value is chunked, and nothing else: a
			// coding before chunked is one relia would have to undo
			// before it could forward the body without one, and a second
			// field is read as a list by some servers and as the last
			// value by others.
			if haveTE || !equalFold(f.Value, "chunked") {
				return malformed(KindFraming, "Transfer-Encoding other than one chunked")
			}
			haveTE = true
		case equalFold(f.Name, "Connection"):
			for tok := range Tokens(f.Value) {
				switch {
				case equalFold(tok, "close"):
					h.Close = true
				case equalFold(tok, "keep-alive"):
					if h.Minor == 0 {
						h.Close = false
					}
				case equalFold(tok, "upgrade"):
					connUpgrade = true
				}
			}
		case equalFold(f.Name, "Upgrade"):
			upgradeField = true
		}
	}
	h.Upgrade = connUpgrade && upgradeField
	switch {
	case haveTE && haveLength:
		return malformed(KindFraming, "both Transfer-Encoding and Content-Length")
	case haveTE && h.Minor == 0:
		return malformed(KindFraming, "Transfer-Encoding in HTTP/1.0")
	case haveTE:
		h.Framing, h.ContentLength = Chunked, -1
	case haveLength:
		h.Framing = Length
		if h.ContentLength == 0 && request {
			h.Framing = NoBody
		}
	}
	return nil
}

// parseLength parses a Content-Length value: digits only, at most 18 of
// them.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// Tokens yields the comma-separated elements of a list value (Connection,
// Transfer-Encoding, ...), trimmed of optional whitespace,
// skipping empty ones.
func Tokens(v []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(v) > 0 {
			var tok []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				tok, v = v[:i], v[i+1:]
			} else {
				tok, v = v, nil
			}
			if tok = trimOWS(tok); len(tok) > 0 && !yield(tok) {
				return
			}
		}
	}
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// tokenChars marks the characters RFC 9110 allows in a token.
var tokenChars = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// valueStops marks the bytes that end a field value's scan: CR, and the
// control characters a value may not hold (all but HTAB, and DEL).
var valueStops = func() (t [256]bool) {
	for c := range ' ' {
		t[c] = c != '\t'
	}
	t[0x7f] = true
	return t
}()

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return true
}

// equalFold compares b with an ASCII string, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if c|0x20 != d|0x20 || (c|0x20) < 'a' && c != d || (c|0x20) > 'z' && c != d {
			return false
		}
	}
	return true
}

// IsHopByHop reports whether the field name concerns only this hop: one
// of RFC 9110's hop-by-hop fields or one the head's Connection field
// names.
func (h *Head) IsHopByHop(name []byte) bool {
	if HopByHop(name) {
		return true
	}
	for i := range h.Headers {
		if !equalFold(h.Headers[i].Name, "Connection") {
			continue
		}
		for tok := range Tokens(h.Headers[i].Value) {
			if bytes.EqualFold(tok, name) {
				return true
			}
		}
	}
	return false
}

// NamesFields reports whether a Connection field of the head names a
// field that HopByHop does not cover already. When none does (the usual
// "Connection: keep-alive"), IsHopByHop is HopByHop for every name, so a
// caller asking about each field of the head asks HopByHop instead and
// skips a scan of the head per field.
func (h *Head) NamesFields() bool {
	for i := range h.Headers {
		if !equalFold(h.Headers[i].Name, "Connection") {
			continue
		}
		for tok := range Tokens(h.Headers[i].Value) {
			if !HopByHop(tok) {
				return true
			}
		}
	}
	return false
}

// AppendFields appends the head's fields to dst as "Name: value\r\n"
// lines, leaving out those skip reports (nil: none).
func (h *Head) AppendFields(dst []byte, skip func(name []byte) bool) []byte {
	for i := range h.Headers {
		f := &h.Headers[i]
		if skip != nil && skip(f.Name) {
			continue
		}
		dst = append(dst, f.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, f.Value...)
		dst = append(dst, "\r\n"...)
	}
	return dst
}
