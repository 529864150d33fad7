package fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
)

// decodeJSON reads one JSON value from r into v. Fields v does not have
// are refused, and every error speaks of the request's JSON, not of Go:
//
//	field "latency": want a whole number of milliseconds, got "100ms"
//	unknown field "upstrem" (known: name, listen, upstream, enabled, mode, max_triggered)
//
// what names the JSON (`attribute` for a toxic's attributes, `field`
// otherwise). A struct field's "unit" tag names what its number counts.
func decodeJSON(r io.Reader, v any, what string) error {
	data, err := io.ReadAll(r)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("body over %d bytes", tooBig.Limit)
	}
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	return decodeJSONBytes(data, v, what)
}

func decodeJSONBytes(data []byte, v any, what string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return errors.New("empty body, want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return errors.New("more after the JSON value; send one value")
		}
		return nil
	}
	return explainJSON(data, v, what, err)
}

// explainJSON turns a decoding error of data into v into the request's
// terms.
func explainJSON(data []byte, v any, what string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("not valid JSON: it ends early")
	case errors.As(err, &typ):
		path := strings.Split(typ.Field, ".")
		f, ok := fieldAt(reflect.TypeOf(v), path)
		name := typ.Field
		want := describeType(typ.Type, "")
		if ok {
			name = jsonPath(path, reflect.TypeOf(v))
			want = describeType(f.Type, f.Tag.Get("unit"))
		}
		if name == "" {
			return fmt.Errorf("want %s, got %s", want, rawAt(data, nil))
		}
		return fmt.Errorf("%s %q: want %s, got %s", what, name, want, rawAt(data, path))
	}
	if field, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		field = strings.TrimSuffix(field, `"`)
		return fmt.Errorf("unknown %s %q (known: %s)", what, field, strings.Join(jsonFields(reflect.TypeOf(v)), ", "))
	}
	return fmt.Errorf("reading JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// deref strips pointers off t.
func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// element strips pointers, lists and maps off t: the type whose fields
// an object inside it has.
func element(t reflect.Type) reflect.Type {
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		default:
			return t
		}
	}
	return t
}

// jsonName returns the JSON name of a struct field, "" for one JSON skips,
// and whether the field is an embedded struct whose fields are inlined.
func jsonName(f reflect.StructField) (name string, inline bool) {
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch {
	case tag == "-" || !f.IsExported() && !f.Anonymous:
		return "", false
	case tag != "":
		return tag, false
	case f.Anonymous && deref(f.Type).Kind() == reflect.Struct:
		return "", true
	}
	return f.Name, false
}

// jsonFields lists the JSON names of t's fields, in order, inlined
// structs' included.
func jsonFields(t reflect.Type) []string {
	t = element(t)
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		name, inline := jsonName(t.Field(i))
		if inline {
			out = append(out, jsonFields(t.Field(i).Type)...)
		} else if name != "" && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// fieldAt finds the struct field that json's error path names; the path
// holds JSON names, and Go names for embedded structs.
func fieldAt(t reflect.Type, path []string) (reflect.StructField, bool) {
	var f reflect.StructField
	for _, seg := range path {
		t = element(t)
		if t == nil || t.Kind() != reflect.Struct {
			return f, false
		}
		found := false
		for i := range t.NumField() {
			sf := t.Field(i)
			name, inline := jsonName(sf)
			if name == seg || inline && sf.Name == seg {
				f, t, found = sf, sf.Type, true
				break
			}
		}
		if !found {
			return f, false
		}
	}
	return f, len(path) > 0
}

// jsonPath joins the JSON names of path, leaving out embedded structs.
func jsonPath(path []string, t reflect.Type) string {
	var names []string
	for _, seg := range path {
		t = element(t)
		if t == nil || t.Kind() != reflect.Struct {
			names = append(names, seg)
			continue
		}
		for i := range t.NumField() {
			sf := t.Field(i)
			name, inline := jsonName(sf)
			if name == seg || inline && sf.Name == seg {
				if !inline {
					names = append(names, seg)
				}
				t = sf.Type
				break
			}
		}
	}
	return strings.Join(names, ".")
}

// describeType says in words what JSON a Go type takes; unit is what a
// number counts ("milliseconds").
func describeType(t reflect.Type, unit string) string {
	t = deref(t)
	of := ""
	if unit != "" {
		of = " of " + unit
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number" + of
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more" + of
	case reflect.Float32, reflect.Float64:
		return "a number" + of
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list of " + plural(describeType(t.Elem(), unit))
	case reflect.Map:
		return "an object whose values are " + plural(describeType(t.Elem(), unit))
	}
	return "an object"
}

// plural turns "a number of milliseconds" into "numbers of milliseconds".
func plural(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ")
	head, tail, _ := strings.Cut(s, " of ")
	if tail != "" {
		tail = " of " + tail
	}
	switch {
	case strings.HasPrefix(head, "whole number"), head == "number", head == "string", head == "object":
		head += "s"
	case head == "true or false":
		head = "booleans"
	}
	return head + tail
}

// maxShown bounds how much of a bad value an error repeats.
const maxShown = 40

// rawAt returns the JSON text at path in data, shortened for a message;
// path segments that are not keys (embedded structs) are skipped.
func rawAt(data []byte, path []string) string {
	raw := json.RawMessage(bytes.TrimSpace(data))
	for _, seg := range path {
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil {
			break
		}
		if next, ok := obj[seg]; ok {
			raw = next
		}
	}
	return shorten(string(bytes.TrimSpace(raw)))
}

// shorten cuts s to maxShown bytes, saying so.
func shorten(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return strings.ToValidUTF8(s[:maxShown], "") + "...(" + fmt.Sprint(len(s)) + " bytes)"
}
