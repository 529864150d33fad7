package config

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// SchemaDescriber is implemented by types that decode themselves (Size,
// Ratio) to describe their YAML form in a JSON Schema.
type SchemaDescriber interface {
	JSONSchema() map[string]any
}

var describerType = reflect.TypeFor[SchemaDescriber]()

// Schema returns a JSON Schema (draft-07, which editors' YAML language
// servers understand) for documents of kind whose body decodes into v (a
// struct or a pointer to one), so that editors complete and check configs
// as they are typed. It follows Decode's rules: yaml tags name fields,
// `config:"required"` fields are required, unknown fields are not
// allowed, durations are strings with a unit, and types implementing
// SchemaDescriber describe themselves. kind and version are added as
// constants.
func Schema(kind string, v any) ([]byte, error) {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("building the %s schema: need a struct, got %T", kind, v)
	}
	body := typeSchema(t, map[reflect.Type]bool{})
	props := body["properties"].(map[string]any)
	props["kind"] = map[string]any{"const": kind}
	props["version"] = map[string]any{"const": Version}
	required, _ := body["required"].([]string)
	body["required"] = append([]string{"kind", "version"}, required...)
	body["$schema"] = "http://json-schema.org/draft-07/schema#"
	body["title"] = "relia " + kind
	out, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("building the %s schema: %w", kind, err)
	}
	return append(out, '\n'), nil
}

// typeSchema describes t; seen breaks recursive types.
func typeSchema(t reflect.Type, seen map[reflect.Type]bool) map[string]any {
	if t.Kind() == reflect.Pointer {
		// A *Ratio field is optional in Go but reads the same in YAML.
		return typeSchema(t.Elem(), seen)
	}
	if reflect.PointerTo(t).Implements(describerType) {
		// Through a pointer to a zero value, so value and pointer
		// receivers both work.
		return reflect.New(t).Interface().(SchemaDescriber).JSONSchema()
	}
	if t == durationType {
		return durationSchema()
	}
	if t == nodeType {
		return map[string]any{}
	}
	switch t.Kind() {
	case reflect.String:
		// Decode keeps numbers and booleans as written (labels: {tier: 1}).
		return map[string]any{"type": []string{"string", "number", "boolean"}}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		return map[string]any{"type": "array", "items": typeSchema(t.Elem(), seen)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": typeSchema(t.Elem(), seen)}
	case reflect.Struct:
		if seen[t] {
			return map[string]any{"type": "object"}
		}
		seen[t] = true
		defer delete(seen, t)
		props := map[string]any{}
		var required []string
		for _, f := range fieldsOf(t).list {
			props[f.name] = typeSchema(f.typ, seen)
			if f.required {
				required = append(required, f.name)
			}
		}
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	return map[string]any{}
}
