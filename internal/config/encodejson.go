package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// MarshalJSON writes body as one document of kind in JSON: the same keys,
// order and values as Marshal's YAML (the config's own camelCase names,
// durations in their syntax, zero fields left out), so that JSON a
// program serves can be pasted into a config file (JSON is YAML) and
// Decode reads it back.
func MarshalJSON(kind string, body any) ([]byte, error) {
	n, err := documentNode(kind, body)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := appendJSON(&b, n); err != nil {
		return nil, fmt.Errorf("writing %s: %w", kind, err)
	}
	return b.Bytes(), nil
}

// appendJSON writes the node tree that encodeValue made as JSON.
func appendJSON(b *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				b.WriteByte(',')
			}
			appendJSONString(b, n.Content[i].Value)
			b.WriteByte(':')
			if err := appendJSON(b, n.Content[i+1]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := appendJSON(b, c); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!int", "!!float":
			if !json.Valid([]byte(n.Value)) {
				return fmt.Errorf("%q is not a JSON number", n.Value)
			}
			b.WriteString(n.Value)
		case "!!bool":
			v, err := strconv.ParseBool(n.Value)
			if err != nil {
				return fmt.Errorf("%q is not a boolean", n.Value)
			}
			b.WriteString(strconv.FormatBool(v))
		case "!!null":
			b.WriteString("null")
		default:
			appendJSONString(b, n.Value)
		}
	default:
		return fmt.Errorf("cannot write a YAML node of kind %v as JSON", n.Kind)
	}
	return nil
}

// appendJSONString writes s as a JSON string, <, > and & as they are.
func appendJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)           // a string always encodes
	b.Truncate(b.Len() - 1) // the newline Encode ends with
}
