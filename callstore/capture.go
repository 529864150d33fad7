package callstore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/relia-dev/relia/internal/config"
)

// Capture says what a route keeps of its calls besides the record's own
// fields: headers and bodies, which are off unless a route turns them
// on, capped in size and redacted before they leave the request (so a
// secret never reaches the spool file or the store).
type Capture struct {
	// Headers keeps the request's and the response's headers. The values
	// of Authorization, Proxy-Authorization, Cookie, Set-Cookie and the
	// usual API key headers are always replaced by "[redacted]".
	Headers bool `yaml:"headers,omitempty"`
	// Bodies keeps the first maxBodyBytes of the request's and the
	// response's bodies, taken as they stream through the gateway (what
	// is forwarded is not changed or held back); the record's bytes_in
	// and bytes_out give their whole sizes. A body that is not text
	// (not UTF-8, or holding NUL bytes) is noted by its size only.
	Bodies bool `yaml:"bodies,omitempty"`
	// MaxBodyBytes caps each kept body; 4KiB by default, at most 1MiB.
	// It is also the most memory a call's capture takes for each of its
	// two bodies, whatever size the client announces. A JSON body cut
	// at the cap cannot be redacted, so with redactJSONPaths it is not
	// kept at all.
	MaxBodyBytes config.Size `yaml:"maxBodyBytes,omitempty"`
	// RedactHeaders names more headers whose values are replaced, such
	// as the header the route's API keys come in.
	RedactHeaders []string `yaml:"redactHeaders,omitempty"`
	// RedactJSONPaths are the fields of JSON bodies whose values are
	// replaced: "password", "card.number", "items[*].token" (every
	// element), "*.secret" (any key at that level) or "..password" (at
	// any depth).
	RedactJSONPaths []string `yaml:"redactJSONPaths,omitempty"`
}

// DefaultMaxBodyBytes is Capture.MaxBodyBytes' default; LimitMaxBodyBytes
// the most it may be (a record's fields are read back within a few MiB).
const (
	DefaultMaxBodyBytes = 4 << 10
	LimitMaxBodyBytes   = 1 << 20
)

// Redacted replaces a value that is not kept.
const Redacted = "[redacted]"

// alwaysRedacted are the headers whose values are never kept.
var alwaysRedacted = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key", "x-auth-token"}

// Redactor applies a Capture to what a call sent and received.
type Redactor struct {
	c       Capture
	headers map[string]bool
	paths   [][]pathStep
}

// pathStep is one step of a JSON path: a key, any key ("*"), every
// element of an array, or any depth.
type pathStep struct {
	key     string
	anyKey  bool
	each    bool
	descend bool
}

// NewRedactor checks c and returns its Redactor; a malformed JSON path
// is an error naming it.
func NewRedactor(c Capture) (*Redactor, error) {
	r := &Redactor{c: c, headers: map[string]bool{}}
	switch {
	case r.c.MaxBodyBytes <= 0:
		r.c.MaxBodyBytes = DefaultMaxBodyBytes
	case r.c.MaxBodyBytes > LimitMaxBodyBytes:
		return nil, fmt.Errorf("maxBodyBytes %s is over the most a call record keeps of a body, %s", r.c.MaxBodyBytes, config.Size(LimitMaxBodyBytes))
	}
	for _, h := range alwaysRedacted {
		r.headers[h] = true
	}
	for _, h := range c.RedactHeaders {
		r.headers[strings.ToLower(h)] = true
	}
	for _, p := range c.RedactJSONPaths {
		steps, err := parseJSONPath(p)
		if err != nil {
			return nil, err
		}
		r.paths = append(r.paths, steps)
	}
	return r, nil
}

// parseJSONPath reads "a.b", "$.a.b", "items[*].token", "*.x", "..x".
func parseJSONPath(p string) ([]pathStep, error) {
	bad := func(why string) error { return fmt.Errorf("JSON path %q: %s", p, why) }
	s := strings.TrimPrefix(p, "$")
	if s == "" {
		return nil, bad("empty")
	}
	if s[0] != '.' && s[0] != '[' {
		s = "." + s
	}
	var steps []pathStep
	for len(s) > 0 {
		switch {
		case strings.HasPrefix(s, "[*]"):
			steps = append(steps, pathStep{each: true})
			s = s[3:]
		case strings.HasPrefix(s, ".."):
			steps = append(steps, pathStep{descend: true})
			s = s[1:] // the key follows after one dot
		case s[0] == '.':
			s = s[1:]
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			key := s[:end]
			if key == "" {
				return nil, bad("a key is empty")
			}
			if key == "*" {
				steps = append(steps, pathStep{anyKey: true})
			} else {
				steps = append(steps, pathStep{key: key})
			}
			s = s[end:]
		default:
			return nil, bad(fmt.Sprintf("unexpected %q (keys are joined by dots; [*] is every element)", s[:1]))
		}
	}
	if last := steps[len(steps)-1]; last.descend || last.each && len(steps) == 1 {
		return nil, bad("it must end with a key")
	}
	return steps, nil
}

// KeepsBodies reports whether the capture keeps bodies; MaxBodyBytes is
// how much of each it keeps.
func (r *Redactor) KeepsBodies() bool { return r != nil && r.c.Bodies }

// KeepsHeaders reports whether the capture keeps headers.
func (r *Redactor) KeepsHeaders() bool { return r != nil && r.c.Headers }

// MaxBodyBytes is the most of a body the capture keeps, its cap applied.
func (r *Redactor) MaxBodyBytes() int { return int(r.c.MaxBodyBytes) }

// Headers returns the headers with the values of secret ones replaced;
// nil unless the capture keeps headers. A value that is not UTF-8
// (HTTP allows other bytes) has them replaced by U+FFFD, as a store's
// text column requires.
func (r *Redactor) Headers(hs []Header) []Header {
	if r == nil || !r.c.Headers || len(hs) == 0 {
		return nil
	}
	out := make([]Header, len(hs))
	for i, h := range hs {
		out[i] = h
		switch {
		case r.headers[strings.ToLower(h.Name)]:
			out[i].Value = Redacted
		case !utf8.ValidString(h.Value):
			out[i].Value = strings.ToValidUTF8(h.Value, "\uFFFD")
		}
	}
	return out
}

// Body returns the part of a body that is kept: "" unless the capture
// keeps bodies; JSON (by its first byte) with the configured paths
// redacted; anything else up to the cap. total is the body's whole size,
// which may exceed len(b) when the caller kept only a prefix.
func (r *Redactor) Body(b []byte, total int64) string {
	if r == nil || !r.c.Bodies || total == 0 {
		return ""
	}
	limit := int64(r.c.MaxBodyBytes)
	cut := total > limit || int64(len(b)) < total
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	isJSON := len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[')
	if len(r.paths) > 0 && isJSON {
		if cut {
			return fmt.Sprintf("[body of %d bytes not kept: larger than maxBodyBytes (%d), so it cannot be redacted]", total, limit)
		}
		red, err := r.redactJSON(b)
		if err != nil {
			return "[body not kept: not valid JSON, so it cannot be redacted]"
		}
		return string(red)
	}
	if int64(len(b)) > limit {
		b = b[:limit]
	}
	if cut {
		// A cut may fall inside a character: its first bytes are not
		// the body's fault.
		b = trimPartialRune(b)
	}
	if !utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0 {
		return fmt.Sprintf("[body of %d bytes not kept: not text]", total)
	}
	if cut {
		return string(b) + fmt.Sprintf("…[%d bytes in all]", total)
	}
	return string(b)
}

// trimPartialRune drops an incomplete UTF-8 sequence from b's end.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax-1 && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b // ASCII: nothing is cut
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

var errNotJSON = errors.New("not JSON")

func (r *Redactor) redactJSON(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errNotJSON
	}
	if dec.More() {
		return nil, errNotJSON
	}
	for _, p := range r.paths {
		v = redactPath(v, p)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// redactPath replaces the values at path in v.
func redactPath(v any, path []pathStep) any {
	if len(path) == 0 {
		return Redacted
	}
	st, rest := path[0], path[1:]
	switch {
	case st.descend:
		// The key after ".." matches at this level or any below.
		v = redactPath(v, rest)
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				t[k] = redactPath(c, path)
			}
		case []any:
			for i, c := range t {
				t[i] = redactPath(c, path)
			}
		}
		return v
	case st.each:
		if arr, ok := v.([]any); ok {
			for i, c := range arr {
				arr[i] = redactPath(c, rest)
			}
		}
		return v
	case st.anyKey:
		if m, ok := v.(map[string]any); ok {
			for k, c := range m {
				m[k] = redactPath(c, rest)
			}
		}
		return v
	default:
		if m, ok := v.(map[string]any); ok {
			if c, ok := m[st.key]; ok {
				m[st.key] = redactPath(c, rest)
			}
		}
		return v
	}
}
