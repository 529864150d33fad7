package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// maxErrors bounds how many errors one Decode reports: enough to fix a
// file in one pass, few enough that a wrong file does not flood a
// terminal.
const maxErrors = 20

// Decode decodes the document into into, a non-nil pointer (usually to
// the kind's struct), strictly:
//
//   - a key that names no field is an error, with a suggestion when it is
//     a near miss of one ("objectiv" -> "objective");
//   - a value of the wrong type is an error ("expected a number, got a
//     list"), and so is an integer out of its field's range;
//   - a duplicate key is an error;
//   - a field tagged `config:"required"` that is absent or null is an
//     error.
//
// Fields are named by their yaml tags (`yaml:"name"`, `yaml:",inline"`,
// `yaml:"-"`), or by their lower-cased Go name when untagged; a field
// tagged `config:"alias=old"` is read under its old name too (setting
// both is a duplicate), so a key can be renamed without breaking the
// files that use it. Fields of
// type time.Duration take ParseDuration's syntax ("250ms", "7d") and
// reject negatives. Types implementing yaml.Unmarshaler (Size, Ratio)
// decode themselves; the errors they return are positioned at their
// node. Anchors, aliases and merge keys (<<) work as in YAML.
//
// The envelope keys kind, version and apiVersion at the top level are
// skipped unless the struct has fields for them: Document holds them.
//
// Every error is an *Error naming file:line:col and the field path; when
// there are several (up to 20), Decode returns them joined (errors.Join)
// in document order.
func (d Document) Decode(into any) error { return d.DecodePath("", into) }

// DecodePath decodes the part of the document at path (as At finds it)
// into into, with Decode's rules; errors name fields by their full path.
// Formats whose parts take several shapes (a name or an inline object)
// decode each part once they know its shape.
func (d Document) DecodePath(path string, into any) error {
	rv := reflect.ValueOf(into)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("decoding %s: need a non-nil pointer, got %T", d.File, into)
	}
	if d.Node == nil {
		return fmt.Errorf("decoding %s: empty document", d.File)
	}
	dec := &decoder{file: d.File}
	dec.value(d.At(path), rv.Elem(), path)
	return errors.Join(dec.errs...)
}

// decoder walks a node tree and a Go value together, collecting errors.
type decoder struct {
	file   string
	errs   []error
	visits int // values decoded, bounded by maxVisits
}

// maxVisits bounds the values one Decode walks: aliases can make a small
// document name an exponential number of values.
const maxVisits = 100_000

func (dec *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	if len(dec.errs) == maxErrors {
		dec.errs = append(dec.errs, &Error{File: dec.file, Line: n.Line, Col: n.Column, Msg: "too many errors"})
	}
	if len(dec.errs) > maxErrors {
		return
	}
	dec.errs = append(dec.errs, &Error{File: dec.file, Line: n.Line, Col: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
	nodeType        = reflect.TypeFor[yaml.Node]()
)

// value decodes node n into v; path names v in errors.
func (dec *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	at := n // errors point at the use site, not an alias's anchor
	n = resolve(n)
	if dec.visits++; dec.visits > maxVisits {
		if dec.visits == maxVisits+1 {
			dec.fail(at, path, "the document expands to more than %d values through its aliases", maxVisits)
		}
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.SetZero()
		if v.Kind() == reflect.Struct && !v.Addr().Type().Implements(unmarshalerType) && v.Type() != durationType {
			// A null struct is an empty one: its required fields and
			// one-of choice are still missing.
			dec.structValue(&yaml.Node{Kind: yaml.MappingNode, Line: at.Line, Column: at.Column}, v, path)
		}
		return
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		dec.value(at, v.Elem(), path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			dec.fail(at, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
			dec.fail(at, path, "expected a duration such as 250ms or 7d, got %s", describe(n))
			return
		}
		d, err := ParseDuration(n.Value)
		if err != nil {
			dec.fail(at, path, "%v", err)
			return
		}
		v.SetInt(int64(d))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			dec.fail(at, path, "expected a mapping, got %s", describe(n))
			return
		}
		dec.structValue(n, v, path)
	case reflect.Map:
		dec.mapValue(at, n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			dec.fail(at, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			dec.value(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			dec.fail(at, path, "%v", err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		dec.scalar(at, n, v, path)
	}
}

// scalar decodes strings, booleans and numbers.
func (dec *decoder) scalar(at, n *yaml.Node, v reflect.Value, path string) {
	want, tags := "an integer", []string{"!!int"}
	switch v.Kind() {
	case reflect.String:
		// Numbers, booleans and dates are unambiguous as strings: keep
		// their text, as written.
		want, tags = "a string", []string{"!!str", "!!int", "!!float", "!!bool", "!!timestamp"}
	case reflect.Bool:
		want, tags = "true or false", []string{"!!bool"}
	case reflect.Float32, reflect.Float64:
		want, tags = "a number", []string{"!!int", "!!float"}
	}
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		dec.fail(at, path, "expected %s, got %s", want, describe(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, _ := strconv.ParseBool(strings.ToLower(n.Value))
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(yamlInt(n.Value), 0, v.Type().Bits())
		if err != nil {
			dec.fail(at, path, "%s is out of range for this field", n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(yamlInt(n.Value), 0, v.Type().Bits())
		if strings.HasPrefix(n.Value, "-") {
			dec.fail(at, path, "%s is negative", n.Value)
			return
		}
		if err != nil {
			dec.fail(at, path, "%s is out of range for this field", n.Value)
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(yamlInt(n.Value), v.Type().Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			dec.fail(at, path, "%s is not a finite number", n.Value)
			return
		}
		v.SetFloat(f)
	default:
		dec.fail(at, path, "fields of Go type %s cannot be configured", v.Type())
	}
}

// yamlInt drops the digit separators (1_000) that YAML resolves as
// numbers but strconv only accepts in Go's own placement.
func yamlInt(s string) string { return strings.ReplaceAll(strings.TrimPrefix(s, "+"), "_", "") }

// OneOf is implemented by structs that hold exactly one of their fields,
// each field an alternative rather than a setting (an SLI is either
// availability or latency). Decode then reports an unknown key as an
// unknown <noun> ("unknown SLI kind"), and a mapping with none or several
// of the fields set as an error.
type OneOf interface {
	OneOfNoun() string
}

var oneOfType = reflect.TypeFor[OneOf]()

// structValue decodes mapping n into the struct v.
func (dec *decoder) structValue(n *yaml.Node, v reflect.Value, path string) {
	fields := fieldsOf(v.Type())
	noun := ""
	if reflect.PointerTo(v.Type()).Implements(oneOfType) {
		noun = v.Addr().Interface().(OneOf).OneOfNoun()
	}
	seen := map[string]*yaml.Node{}
	for _, kv := range pairs(n) {
		name, ok := dec.key(kv.key, path)
		if !ok {
			continue
		}
		fpath := joinPath(path, name)
		if first, dup := seen[name]; dup {
			dec.fail(kv.key, fpath, "duplicate field (first set on line %d)", first.Line)
			continue
		}
		f, ok := fields.byName[name]
		if ok && f.name != name {
			// An alias: one field, whichever name sets it.
			if first, dup := seen[f.name]; dup {
				dec.fail(kv.key, fpath, "duplicate field: %s is another name for %s (set on line %d)", name, f.name, first.Line)
				continue
			}
			seen[f.name] = kv.value
		}
		seen[name] = kv.value
		if !ok {
			if path == "" && (name == "kind" || name == "version" || name == "apiVersion") {
				continue
			}
			what := "field"
			if noun != "" {
				what = noun
			}
			dec.fail(kv.key, fpath, "unknown %s%s", what, fields.suggest(name))
			continue
		}
		dec.value(kv.value, fieldAlloc(v, f.index), fpath)
	}
	for _, f := range fields.list {
		for _, a := range f.aliases {
			delete(seen, a) // counted under the field's own name
		}
	}
	set := 0 // alternatives given a value: a null one is not chosen
	for _, val := range seen {
		if r := resolve(val); r.Kind != yaml.ScalarNode || r.ShortTag() != "!!null" {
			set++
		}
	}
	if noun != "" && set != 1 {
		names := make([]string, len(fields.list))
		for i, f := range fields.list {
			names[i] = f.name
		}
		if set == 0 {
			dec.fail(n, path, "missing the %s: want one of %s", noun, strings.Join(names, ", "))
		} else {
			dec.fail(n, path, "takes one %s, got %d (%s)", noun, set, strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
		}
	}
	for _, f := range fields.list {
		if !f.required {
			continue
		}
		if val, ok := seen[f.name]; !ok || (resolve(val).Kind == yaml.ScalarNode && resolve(val).ShortTag() == "!!null") {
			at := n
			if ok {
				at = val
			}
			dec.fail(at, joinPath(path, f.name), "missing (required)")
		}
	}
}

// mapValue decodes a mapping into a map with string keys.
func (dec *decoder) mapValue(at, n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		dec.fail(at, path, "expected a mapping, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		dec.fail(at, path, "maps with %s keys cannot be configured", v.Type().Key())
		return
	}
	m := reflect.MakeMap(v.Type())
	seen := map[string]int{}
	for _, kv := range pairs(n) {
		name, ok := dec.key(kv.key, path)
		if !ok {
			continue
		}
		fpath := joinPath(path, name)
		if line, dup := seen[name]; dup {
			dec.fail(kv.key, fpath, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[name] = kv.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		dec.value(kv.value, elem, fpath)
		m.SetMapIndex(reflect.ValueOf(name).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

// key checks that a mapping key is a plain scalar and returns it.
func (dec *decoder) key(k *yaml.Node, path string) (string, bool) {
	k = resolve(k)
	if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
		dec.fail(k, path, "keys must be plain strings, got %s", describe(k))
		return "", false
	}
	return k.Value, true
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// fieldAlloc returns the field at index in v, allocating nil embedded
// pointers on the way.
func fieldAlloc(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

// pair is one key and value of a mapping.
type pair struct{ key, value *yaml.Node }

// maxMergeWork bounds the merge-key expansion of one mapping, so that a
// document of nested merges (a "billion laughs") cannot hang a loader.
const maxMergeWork = 10000

// pairs lists a mapping's keys and values with merge keys (<<) expanded:
// merged keys apply where the mapping does not set them itself.
func pairs(n *yaml.Node) []pair {
	work := maxMergeWork
	return mergedPairs(n, &work)
}

func mergedPairs(n *yaml.Node, work *int) []pair {
	var own, merged []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		*work--
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			v = resolve(v)
			sources := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				sources = v.Content
			}
			for _, s := range sources {
				if s = resolve(s); s.Kind == yaml.MappingNode && *work > 0 {
					merged = append(merged, mergedPairs(s, work)...)
				}
			}
			continue
		}
		own = append(own, pair{k, v})
	}
	for _, m := range merged {
		if !slices.ContainsFunc(own, func(p pair) bool { return p.key.Value == m.key.Value }) {
			own = append(own, m)
		}
	}
	return own
}

// structField is one configurable field of a struct.
type structField struct {
	name     string
	index    []int
	required bool
	typ      reflect.Type
	// aliases are other names the field is read under
	// (`config:"alias=on"`): old names kept working after a rename.
	aliases []string
	// goName and owner name the Go field and the struct that declares
	// it, for its doc comment in schemas.
	goName string
	owner  reflect.Type
}

// structFields are a struct type's configurable fields, in order.
type structFields struct {
	list   []structField
	byName map[string]structField
}

// suggest returns " (did you mean x?)" for a near miss, or the list of
// valid names.
func (fs structFields) suggest(name string) string {
	best, bestDist := "", 3
	names := make([]string, 0, len(fs.list))
	for _, f := range fs.list {
		names = append(names, f.name)
		if d := editDistance(strings.ToLower(name), strings.ToLower(f.name)); d < bestDist {
			best, bestDist = f.name, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	if len(names) == 0 {
		return " (this mapping takes no fields)"
	}
	return " (valid: " + strings.Join(names, ", ") + ")"
}

var fieldCache sync.Map // reflect.Type -> structFields

// fieldsOf lists the configurable fields of struct type t.
func fieldsOf(t reflect.Type) structFields {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(structFields)
	}
	fs := structFields{byName: map[string]structField{}}
	var walk func(t reflect.Type, index []int)
	walk = func(t reflect.Type, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			idx := append(slices.Clone(index), i)
			if slices.Contains(strings.Split(opts, ","), "inline") {
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				walk(ft, idx)
				continue
			}
			if !sf.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			f := structField{name: name, index: idx, typ: sf.Type, goName: sf.Name, owner: t}
			for _, opt := range strings.Split(sf.Tag.Get("config"), ",") {
				if alias, ok := strings.CutPrefix(opt, "alias="); ok {
					f.aliases = append(f.aliases, alias)
				}
				f.required = f.required || opt == "required"
			}
			fs.list = append(fs.list, f)
			fs.byName[name] = f
			for _, a := range f.aliases {
				fs.byName[a] = f
			}
		}
	}
	walk(t, nil)
	fieldCache.Store(t, fs)
	return fs
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
