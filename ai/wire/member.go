package wire

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
)

// Member returns the raw value of the top-level member key of the JSON
// object obj, and whether it is there. It reads only as far as it must:
// the values it passes over are skipped, not decoded, so editing a body
// relia forwards costs a scan rather than a decode and an encode, and
// keeps every member it does not touch exactly as the client wrote it.
func Member(obj []byte, key string) ([]byte, bool, error) {
	vs, ve, _, _, err := findMember(obj, key)
	if err != nil || vs < 0 {
		return nil, false, err
	}
	return obj[vs:ve], true, nil
}

// SetMember returns obj with its top-level member key set to value (raw
// JSON, which the caller guarantees is valid): replaced in place when
// present, appended otherwise. obj must be a JSON object.
func SetMember(obj []byte, key string, value []byte) ([]byte, error) {
	vs, ve, end, empty, err := findMember(obj, key)
	if err != nil {
		return nil, err
	}
	if vs >= 0 {
		out := make([]byte, 0, len(obj)-(ve-vs)+len(value))
		out = append(out, obj[:vs]...)
		out = append(out, value...)
		return append(out, obj[ve:]...), nil
	}
	out := make([]byte, 0, len(obj)+len(key)+len(value)+4)
	out = append(out, obj[:end]...)
	if !empty {
		out = append(out, ',')
	}
	out = appendJSONString(out, key)
	out = append(out, ':')
	out = append(out, value...)
	return append(out, obj[end:]...), nil
}

// ErrNotObject is the error of a read that wants a JSON object and finds
// something else.
var ErrNotObject = errors.New("json: not an object")

// findMember scans obj for key: the value's span when found (vs = -1
// when not), the offset of the object's closing brace, and whether the
// object has no members.
func findMember(obj []byte, key string) (vs, ve, end int, empty bool, err error) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return -1, -1, 0, false, ErrNotObject
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		if skipSpace(obj, i+1) != len(obj) {
			return -1, -1, 0, false, ErrNotObject
		}
		return -1, -1, i, true, nil
	}
	vs = -1
	for {
		if i >= len(obj) || obj[i] != '"' {
			return -1, -1, 0, false, ErrNotObject
		}
		ks := i
		i, err = skipString(obj, i)
		if err != nil {
			return -1, -1, 0, false, err
		}
		match := keyEquals(obj[ks:i], key)
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return -1, -1, 0, false, ErrNotObject
		}
		i = skipSpace(obj, i+1)
		s := i
		i, err = skipValue(obj, i, 0)
		if err != nil {
			return -1, -1, 0, false, err
		}
		if match {
			vs, ve = s, i // the last of duplicate keys wins, as in encoding/json
		}
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return -1, -1, 0, false, ErrNotObject
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			if j := skipSpace(obj, i+1); j != len(obj) {
				return -1, -1, 0, false, ErrNotObject
			}
			return vs, ve, i, false, nil
		default:
			return -1, -1, 0, false, ErrNotObject
		}
	}
}

// keyEquals compares a quoted JSON key with key; keys with escapes are
// compared after unquoting. An escape makes a key's text longer than
// what it stands for, so only a key longer than key is searched for one:
// the keys of a stream's chunks are compared with several names each.
func keyEquals(quoted []byte, key string) bool {
	raw := quoted[1 : len(quoted)-1]
	switch {
	case len(raw) == len(key):
		return string(raw) == key && !strings.Contains(key, `\`)
	case len(raw) < len(key) || !slices.Contains(raw, '\\'):
		return false
	}
	var s string
	if err := jsonUnquote(quoted, &s); err != nil {
		return false
	}
	return s == key
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

var errSyntax = errors.New("json: syntax error")

// skipString returns the offset after the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			i++
		case c < 0x20:
			return 0, errSyntax
		}
	}
	return 0, errSyntax
}

// maxDepth bounds the nesting skipValue follows.
const maxDepth = 10000

// skipValue returns the offset after the value starting at b[i].
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) || depth > maxDepth {
		return 0, errSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		closeBy := byte('}')
		if b[i] == '[' {
			closeBy = ']'
		}
		obj := b[i] == '{'
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == closeBy {
			return i + 1, nil
		}
		for {
			var err error
			if obj {
				if i >= len(b) || b[i] != '"' {
					return 0, errSyntax
				}
				if i, err = skipString(b, i); err != nil {
					return 0, err
				}
				i = skipSpace(b, i)
				if i >= len(b) || b[i] != ':' {
					return 0, errSyntax
				}
				i = skipSpace(b, i+1)
			}
			if i, err = skipValue(b, i, depth+1); err != nil {
				return 0, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return 0, errSyntax
			}
			if b[i] == closeBy {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errSyntax
			}
			i = skipSpace(b, i+1)
		}
	}
	s := i
	for i < len(b) && (b[i] == '-' || b[i] == '+' || b[i] == '.' || b[i] >= '0' && b[i] <= '9' || b[i] >= 'a' && b[i] <= 'z' || b[i] == 'E') {
		i++
	}
	switch lit := string(b[s:i]); {
	case lit == "true" || lit == "false" || lit == "null":
	case len(lit) > 0 && (lit[0] == '-' || lit[0] >= '0' && lit[0] <= '9'):
	default:
		return 0, errSyntax
	}
	return i, nil
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

func jsonUnquote(quoted []byte, s *string) error { return json.Unmarshal(quoted, s) }
