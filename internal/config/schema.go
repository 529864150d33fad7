package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

//go:generate go run ./fielddoc/gen

// SchemaBaseURL is where relia's JSON Schemas are published (the
// repository's docs/schema/ folder); each schema's $id is this followed by
// its file name.
const SchemaBaseURL = "https://raw.githubusercontent.com/relia-dev/relia/main/docs/schema/"

// SchemaFile is the file name of kind's schema in docs/schema/:
// "gateway.json" for Gateway.
func SchemaFile(kind string) string { return strings.ToLower(kind) + ".json" }

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
	if doc := typeDocs[typeKey(t)]; doc != "" {
		body["description"] = doc
	}
	props := body["properties"].(map[string]any)
	props["kind"] = map[string]any{"const": kind}
	props["version"] = map[string]any{"const": Version}
	required, _ := body["required"].([]string)
	body["required"] = append([]string{"kind", "version"}, required...)
	body["$schema"] = "http://json-schema.org/draft-07/schema#"
	body["$id"] = SchemaBaseURL + SchemaFile(kind)
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
			props[f.name] = describeField(typeSchema(f.typ, seen), fieldDocs[typeKey(f.owner)+"."+f.goName])
			for _, a := range f.aliases {
				props[a] = describeField(typeSchema(f.typ, seen), fmt.Sprintf(
					"Another name for %s, read the same; write %s, which every YAML parser reads as a key.", f.name, f.name))
			}
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

// typeKey names a type as fieldDocs and typeDocs do.
func typeKey(t reflect.Type) string { return t.PkgPath() + "." + t.Name() }

// describeField puts a field's doc in front of what its type's schema
// says of itself (a size's or a ratio's syntax).
func describeField(s map[string]any, doc string) map[string]any {
	if doc == "" {
		return s
	}
	if own, ok := s["description"].(string); ok && own != "" {
		doc += "\n\n" + own
	}
	s["description"] = doc
	return s
}

// KindsSchema combines the schemas of several kinds (by kind, as Schema
// returns them) into one that checks any relia document: the document's
// kind selects the schema it is checked by, so one schema serves every
// document of a multi-document file. Each kind's schema is embedded under
// definitions, so the result needs nothing else.
func KindsSchema(schemas map[string][]byte) ([]byte, error) {
	kinds := make([]string, 0, len(schemas))
	for k := range schemas {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	defs := map[string]any{}
	var branches []any
	for _, kind := range kinds {
		var s map[string]any
		if err := json.Unmarshal(schemas[kind], &s); err != nil {
			return nil, fmt.Errorf("combining the schemas: %s: %w", kind, err)
		}
		delete(s, "$schema")
		delete(s, "$id")
		defs[kind] = s
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"kind": map[string]any{"const": kind}}, "required": []string{"kind"}},
			"then": map[string]any{"$ref": "#/definitions/" + kind},
		})
	}
	body := map[string]any{
		"$schema": "http://json-schema.org/draft-07/schema#",
		"$id":     SchemaBaseURL + "relia.json",
		"title":   "relia config document",
		"description": "Any relia config document: its kind (" + strings.Join(kinds, ", ") +
			") selects the schema it is checked by, so every document of a multi-document file is checked by this one schema.",
		"type":     "object",
		"required": []string{"kind", "version"},
		"properties": map[string]any{
			"kind":    map[string]any{"enum": kinds, "description": "what the document configures"},
			"version": map[string]any{"const": Version},
		},
		"allOf":       branches,
		"definitions": defs,
	}
	out, err := json.MarshalIndent(body, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("combining the schemas: %w", err)
	}
	return append(out, '\n'), nil
}
