package mock

import (
	"encoding/json"
	"slices"
	"strings"
)

// jsonAnswer returns an answer to a request for JSON output: an instance
// of its schema (for response_format json_schema) or a small object (for
// json_object), as the tokens of its text, four bytes each.
func jsonAnswer(seed int64, prompt string, rf json.RawMessage) ([]string, bool) {
	var f struct {
		Type       string `json:"type"`
		JSONSchema struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	}
	if json.Unmarshal(rf, &f) != nil {
		return nil, false
	}
	var v any
	switch f.Type {
	case "json_object":
		v = map[string]any{"answer": strings.TrimSpace(strings.Join(outputWords(seed, prompt, 3), ""))}
	case "json_schema":
		var schema any
		json.Unmarshal(f.JSONSchema.Schema, &schema)
		v = instanceOf(schema, seed, prompt, 0)
	default:
		return nil, false
	}
	b, _ := json.Marshal(v)
	var toks []string
	for s := string(b); s != ""; {
		n := min(4, len(s))
		toks = append(toks, s[:n])
		s = s[n:]
	}
	return toks, true
}

// instanceOf builds a value that a JSON Schema accepts, for the common
// keywords: type, enum, const, properties and required, items,
// minItems. Choices are made by the seed and the prompt.
func instanceOf(schema any, seed int64, prompt string, depth int) any {
	s, _ := schema.(map[string]any)
	if s == nil || depth > 8 {
		return nil
	}
	if c, ok := s["const"]; ok {
		return c
	}
	if e, ok := s["enum"].([]any); ok && len(e) > 0 {
		return e[splitmix64(uint64(seed)^hashString(prompt))%uint64(len(e))]
	}
	typ, _ := s["type"].(string)
	if typ == "" {
		if _, ok := s["properties"]; ok {
			typ = "object"
		}
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := s["properties"].(map[string]any)
		names := make([]string, 0, len(props))
		for k := range props {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			out[k] = instanceOf(props[k], seed, prompt+k, depth+1)
		}
		return out
	case "array":
		n := 1
		if m, ok := s["minItems"].(float64); ok && int(m) > n {
			n = int(m)
		}
		out := make([]any, n)
		for i := range out {
			out[i] = instanceOf(s["items"], seed, prompt, depth+1)
		}
		return out
	case "integer", "number":
		if m, ok := s["minimum"].(float64); ok {
			return m
		}
		return 1
	case "boolean":
		return true
	case "null":
		return nil
	}
	return strings.TrimSpace(strings.Join(outputWords(seed, prompt, 2), ""))
}
