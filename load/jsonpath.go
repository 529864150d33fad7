package load

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// JSONPath is a compiled path into a JSON document, the subset of JSONPath
// that checks and extractions need:
//
//	$                     the whole document
//	$.data.token          object members
//	$['odd key'].x        quoted member names
//	$.items[0].id         array elements; negative indexes count from the end
//
// Paths are compiled once, when the scenario loads, so a malformed path is
// an error before load starts.
type JSONPath struct {
	src   string
	steps []pathStep
}

type pathStep struct {
	key   string
	index int
	isIdx bool
}

// ParseJSONPath compiles a path; errors give the byte offset of the problem.
func ParseJSONPath(src string) (*JSONPath, error) {
	p := &JSONPath{src: src}
	bad := func(at int, msg string, a ...any) (*JSONPath, error) {
		return nil, fmt.Errorf("json path %q at offset %d: %s", src, at, fmt.Sprintf(msg, a...))
	}
	if !strings.HasPrefix(src, "$") {
		return bad(0, "must start with $")
	}
	for i := 1; i < len(src); {
		switch src[i] {
		case '.':
			j := i + 1
			for j < len(src) && src[j] != '.' && src[j] != '[' {
				j++
			}
			if j == i+1 {
				return bad(i, "empty member name after '.'")
			}
			p.steps = append(p.steps, pathStep{key: src[i+1 : j]})
			i = j
		case '[':
			end := strings.IndexByte(src[i:], ']')
			if end < 0 {
				return bad(i, "'[' without ']'")
			}
			inner := src[i+1 : i+end]
			if len(inner) >= 2 && (inner[0] == '\'' || inner[0] == '"') && inner[len(inner)-1] == inner[0] {
				p.steps = append(p.steps, pathStep{key: inner[1 : len(inner)-1]})
			} else {
				n, err := strconv.Atoi(inner)
				if err != nil {
					return bad(i+1, "want an index or a quoted name in [], got %q", inner)
				}
				p.steps = append(p.steps, pathStep{index: n, isIdx: true})
			}
			i += end + 1
		default:
			return bad(i, "want '.' or '[', got %q", src[i])
		}
	}
	return p, nil
}

// String returns the path as written.
func (p *JSONPath) String() string { return p.src }

// Lookup finds the path in a decoded document (as json.Decoder with
// UseNumber produces it). The bool is false when the path does not exist.
func (p *JSONPath) Lookup(doc any) (any, bool) {
	cur := doc
	for _, s := range p.steps {
		if s.isIdx {
			arr, ok := cur.([]any)
			if !ok {
				return nil, false
			}
			i := s.index
			if i < 0 {
				i += len(arr)
			}
			if i < 0 || i >= len(arr) {
				return nil, false
			}
			cur = arr[i]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[s.key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// DecodeJSON decodes a response body for Lookup, keeping numbers exact.
func DecodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("response body is not JSON: %w", err)
	}
	return doc, nil
}

// JSONText renders a looked-up value the way a template or a check sees
// it: strings without quotes, numbers as written, null as "null", objects
// and arrays as compact JSON.
func JSONText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
