package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Version is the version every relia config document declares.
const Version = "relia/v1"

// Document is one YAML document of a config file: the envelope (kind and
// version) read, the rest kept as a node tree so that it can be decoded
// into the kind's own struct and so that validation can point at any
// field's line and column.
type Document struct {
	// File is the name the document was read from, as given to ReadFile
	// or Parse; errors start with it.
	File string
	// Kind is the document's kind: value ("SLO", "Scenario", ...).
	Kind string
	// Version is the document's version: value, or apiVersion: for
	// formats of other tools (OpenSLO).
	Version string
	// Node is the document's root mapping.
	Node *yaml.Node
}

// Error is a config error at a place in a file. Its text is
// "file:line:col: field: message", the form editors and CI annotate
// (YAML syntax errors know their line only: "file:line: message").
type Error struct {
	File      string
	Line, Col int
	// Field is the path of the field in error, "spec.objective" or
	// "spec.alerting.page.windows[1].long"; empty for errors of the
	// document as a whole.
	Field string
	Msg   string
}

// Error writes the error as "file:line:col: field: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ReadFile reads and parses the relia config documents in the file at
// path (see Parse).
func ReadFile(path string) ([]Document, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(path, data)
}

// Parse splits data into its YAML documents (separated by ---) and checks
// each one's envelope: a mapping with a kind: and version: relia/v1.
// Empty documents are skipped. name is used in errors only.
func Parse(name string, data []byte) ([]Document, error) {
	docs, err := ParseAny(name, data)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, d := range docs {
		if err := d.checkEnvelope(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return docs, nil
}

// ParseAny is Parse without the envelope check, for the formats of other
// tools that relia imports (OpenSLO's apiVersion and kind, Sloth's
// version and no kind): every document must still be a mapping, and its
// kind and version (or apiVersion) are read when they are strings.
func ParseAny(name string, data []byte) ([]Document, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []Document
	for {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, syntaxError(name, err)
		}
		if len(root.Content) == 0 {
			continue
		}
		n := root.Content[0]
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
			continue // an empty document, such as after a trailing ---
		}
		if n.Kind != yaml.MappingNode {
			return nil, &Error{File: name, Line: n.Line, Col: n.Column, Msg: "a config document must be a mapping, got " + describe(n)}
		}
		d := Document{File: name, Node: n}
		d.Kind = scalarAt(n, "kind")
		d.Version = scalarAt(n, "version")
		if d.Version == "" {
			d.Version = scalarAt(n, "apiVersion")
		}
		docs = append(docs, d)
	}
	return docs, nil
}

// syntaxError turns yaml.v3's "yaml: line N: msg" into an Error.
func syntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(num); err == nil {
				line, msg = l, after
			}
		}
	}
	return &Error{File: name, Line: line, Msg: "invalid YAML: " + msg}
}

// scalarAt returns the string value of key in mapping n, or "".
func scalarAt(n *yaml.Node, key string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			v := resolve(n.Content[i+1])
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
				return v.Value
			}
		}
	}
	return ""
}

// checkEnvelope checks kind and version of a relia document.
func (d Document) checkEnvelope() error {
	if d.Kind == "" {
		return d.Errorf("kind", "missing: every document needs a kind: (SLO, Scenario, Gateway, Experiment)")
	}
	if d.Version == "" {
		return d.Errorf("version", "missing: every document needs version: %s", Version)
	}
	if d.Version != Version {
		return d.Errorf("version", "%q is not supported (want %s)", d.Version, Version)
	}
	return nil
}

// Errorf returns an *Error positioned at the field at path ("spec.sli",
// "spec.alerting.page.windows[0].long"; see At). When the field is
// absent, because a default applies, the error points at the nearest
// enclosing field that is present.
func (d Document) Errorf(path, format string, args ...any) error {
	n := d.At(path)
	return &Error{File: d.File, Line: n.Line, Col: n.Column, Field: path, Msg: fmt.Sprintf(format, args...)}
}

// At returns the node at path in the document: dot-separated mapping keys
// and [i] sequence indexes. A key's node is its value's; where a part of
// the path is absent, At returns the deepest node that is present (the
// root at worst), so errors about defaults still point somewhere useful.
func (d Document) At(path string) *yaml.Node {
	n := d.Node
	if n == nil {
		return &yaml.Node{}
	}
	for _, part := range splitPath(path) {
		n = resolve(n)
		next := child(n, part)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// splitPath splits "a.b[2].c" into "a", "b", "[2]", "c".
func splitPath(path string) []string {
	var parts []string
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return append(parts, path)
			}
			parts = append(parts, path[:end+1])
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			parts = append(parts, path[:end])
			path = path[end:]
		}
	}
	return parts
}

// child returns the node part ("key" or "[i]") names in n, or nil.
func child(n *yaml.Node, part string) *yaml.Node {
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for _, kv := range pairs(n) {
		if kv.key.Value == part {
			return kv.value
		}
	}
	return nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names a node's type for error messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!str":
			return fmt.Sprintf("the string %q", n.Value)
		case "!!int":
			return "the integer " + n.Value
		case "!!float":
			return "the number " + n.Value
		case "!!bool":
			return "the boolean " + n.Value
		}
		return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
	}
	return "an unexpected node"
}
