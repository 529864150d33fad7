package fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/relia-dev/relia/ai/wire"
)

// MaxJSONMatchBody bounds how much of a request body an http fault reads
// to match on a JSON member (HTTPFault.JSONField): a body larger than this
// does not match. What is read is forwarded with the rest, byte for byte.
const MaxJSONMatchBody = 1 << 20

// JSONScalar is a JSON string, number or true/false that a body member is
// compared with, kept as text: a string's value, or a number's or a
// boolean's JSON text ("4", "0.5", "true").
type JSONScalar string

// UnmarshalJSON takes a string, a number or a boolean.
func (s *JSONScalar) UnmarshalJSON(b []byte) error {
	text, ok := scalarText(b)
	if !ok {
		return fmt.Errorf("a body value must be a string, a number or true/false, got %s", shorten(string(b)))
	}
	*s = JSONScalar(text)
	return nil
}

// scalarText returns the text of a raw JSON scalar (see JSONScalar), and
// false for an object, a list, null or invalid JSON.
func scalarText(raw []byte) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false
	}
	switch c := raw[0]; {
	case c == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	case string(raw) == "true" || string(raw) == "false":
		return string(raw), true
	case c == '-' || c >= '0' && c <= '9':
		if _, err := strconv.ParseFloat(string(raw), 64); err != nil || !json.Valid(raw) {
			return "", false
		}
		return string(raw), true
	}
	return "", false
}

func (f *HTTPFault) validateMatch() error {
	var errs []error
	switch {
	case f.JSONField == "" && (f.JSONEquals != nil || len(f.JSONIn) > 0):
		errs = append(errs, errors.New("json_equals and json_in need json_field, the member they compare"))
	case f.JSONEquals != nil && len(f.JSONIn) > 0:
		errs = append(errs, errors.New("json_equals and json_in both set; give one (json_in may hold one value)"))
	}
	if f.NthRequest > 0 && f.FirstRequests > 0 {
		errs = append(errs, errors.New("nth_request and first_requests both set; give one"))
	}
	return errors.Join(append(errs, nonNegative("nth_request", f.NthRequest), nonNegative("first_requests", f.FirstRequests))...)
}

// matchesJSON reports whether body, the whole request body or nil when it
// was larger than MaxJSONMatchBody, matches the fault's JSON member.
func (f *HTTPFault) matchesJSON(body []byte) bool {
	if body == nil {
		return false
	}
	raw, ok, err := wire.Member(body, f.JSONField)
	if err != nil || !ok {
		return false
	}
	if f.JSONEquals == nil && len(f.JSONIn) == 0 {
		return true
	}
	text, ok := scalarText(raw)
	if !ok {
		return false
	}
	if f.JSONEquals != nil {
		return text == string(*f.JSONEquals)
	}
	return slices.Contains(f.JSONIn, JSONScalar(text))
}

// counted reports whether the n-th request the fault matched (0 is the
// first) is one that nth_request or first_requests let it fault.
func (f *HTTPFault) counted(n uint64) bool {
	switch {
	case f.NthRequest > 0:
		return n+1 == uint64(f.NthRequest)
	case f.FirstRequests > 0:
		return n < uint64(f.FirstRequests)
	}
	return true
}

// peekBody reads r's body up to MaxJSONMatchBody bytes and puts what it
// read back in front of the rest, so the body is forwarded whole (an
// error reading it included). It returns the body when it fitted, nil
// when it was larger or could not be read. Memory follows the bytes
// received, not the Content-Length announced.
func peekBody(r *http.Request) []byte {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}
	}
	prefix, err := io.ReadAll(io.LimitReader(r.Body, MaxJSONMatchBody+1))
	rest := r.Body
	var tail io.Reader = rest
	if err != nil {
		tail = errReader{err}
	}
	r.Body = readCloser{io.MultiReader(bytes.NewReader(prefix), tail), rest}
	if err != nil || len(prefix) > MaxJSONMatchBody {
		return nil
	}
	return prefix
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error { return rc.c.Close() }

// errReader returns its error on every read.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
