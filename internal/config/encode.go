package config

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var marshalerType = reflect.TypeFor[yaml.Marshaler]()

// Marshal writes body as one document of kind, in the form Decode reads
// back: the envelope first, then body's fields in their Go order under
// their yaml names, fields at their zero value (their defaults) left out,
// durations as FormatDuration writes them, map keys sorted, multi-line
// strings as literal blocks. Importers use it to turn other tools' specs
// into relia's.
func Marshal(kind string, body any) ([]byte, error) {
	n, err := documentNode(kind, body)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return nil, fmt.Errorf("writing %s: %w", kind, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", kind, err)
	}
	return b.Bytes(), nil
}

// documentNode is body as the mapping of a document of kind, the
// envelope first.
func documentNode(kind string, body any) (*yaml.Node, error) {
	n, err := encodeValue(reflect.ValueOf(body))
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", kind, err)
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("writing %s: need a struct, got %T", kind, body)
	}
	envelope := []*yaml.Node{strNode("kind"), strNode(kind), strNode("version"), strNode(Version)}
	n.Content = append(envelope, n.Content...)
	return n, nil
}

func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if strings.Contains(s, "\n") {
		n.Style = yaml.LiteralStyle
	}
	return n
}

// encodeValue turns v into a node, mirroring Decode.
func encodeValue(v reflect.Value) (*yaml.Node, error) {
	if v.Kind() == reflect.Pointer && !v.IsNil() && !v.Type().Implements(marshalerType) {
		return encodeValue(v.Elem())
	}
	switch {
	case v.Type() == nodeType:
		n := v.Interface().(yaml.Node)
		return &n, nil
	case v.Type() == durationType:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: FormatDuration(time.Duration(v.Int()))}, nil
	case v.Type().Implements(marshalerType):
		out, err := v.Interface().(yaml.Marshaler).MarshalYAML()
		if err != nil {
			return nil, err
		}
		var n yaml.Node
		if err := n.Encode(out); err != nil {
			return nil, err
		}
		return &n, nil
	}
	switch v.Kind() {
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, f := range fieldsOf(v.Type()).list {
			fv := fieldValue(v, f.index)
			if !fv.IsValid() || fv.IsZero() {
				continue
			}
			child, err := encodeValue(fv)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			n.Content = append(n.Content, strNode(f.name), child)
		}
		return n, nil
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			child, err := encodeValue(v.MapIndex(k))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.String(), err)
			}
			n.Content = append(n.Content, strNode(k.String()), child)
		}
		return n, nil
	case reflect.Slice:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for i := range v.Len() {
			child, err := encodeValue(v.Index(i))
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			n.Content = append(n.Content, child)
		}
		return n, nil
	case reflect.String:
		return strNode(v.String()), nil
	}
	var n yaml.Node
	if err := n.Encode(v.Interface()); err != nil {
		return nil, err
	}
	return &n, nil
}

// fieldValue returns the field at index in v, or the invalid Value when
// an embedded pointer on the way is nil.
func fieldValue(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}
