package load

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Scope names what a template may refer to: the scenario's variables (its
// own and those a setup step extracts) and the columns of its data file.
// Names are resolved to slots when a template is parsed, so a typo is an
// error before load starts and rendering never looks a name up.
type Scope struct {
	vars    map[string]int
	columns map[string]int
	names   []string
}

// NewScope returns a scope with the given variable names and data-file
// columns (the CSV header), either may be empty.
func NewScope(vars, columns []string) (*Scope, error) {
	s := &Scope{vars: map[string]int{}, columns: map[string]int{}}
	for _, v := range vars {
		if err := s.AddVar(v); err != nil {
			return nil, err
		}
	}
	for i, c := range columns {
		if _, dup := s.columns[c]; dup {
			return nil, fmt.Errorf("data column %q appears twice", c)
		}
		s.columns[c] = i
	}
	return s, nil
}

// AddVar adds a variable and returns an error if the name is not an
// identifier or is already taken.
func (s *Scope) AddVar(name string) error {
	if !isIdent(name) {
		return fmt.Errorf("variable name %q: want letters, digits and _ starting with a letter", name)
	}
	if _, dup := s.vars[name]; dup {
		return fmt.Errorf("variable %q defined twice", name)
	}
	if _, fn := templateFuncs[name]; fn {
		return fmt.Errorf("variable name %q is a template function", name)
	}
	s.vars[name] = len(s.names)
	s.names = append(s.names, name)
	return nil
}

// Slot returns the slot of a variable, for filling Env.Vars.
func (s *Scope) Slot(name string) (int, bool) {
	i, ok := s.vars[name]
	return i, ok
}

// Len is the number of variable slots an Env for this scope needs.
func (s *Scope) Len() int { return len(s.names) }

// Env is what one rendering sees: variable values by slot, the current
// data row and a random source. One Env belongs to one VU or worker.
type Env struct {
	Vars []string
	Row  []string
	Rand *rand.Rand
	VU   int
	Iter uint64
}

// Template is a compiled request template: literal text with actions in
// double braces.
//
//	{{token}}            a variable (scenario var or one a setup step extracted)
//	{{data.email}}       a column of the current data-file row
//	{{randInt 1 100}}    a random integer in [1, 100]
//	{{randString 12}}    12 random letters and digits
//	{{uuid}}             a random version-4 UUID
//	{{pick a b "c d"}}   one of the arguments, uniformly
//	{{vu}} {{iter}}      the VU (or worker) number and its iteration
//
// A literal "{{" is written "{{{{" .
type Template struct {
	src   string
	parts []part
}

type partKind uint8

const (
	partText partKind = iota
	partVar
	partColumn
	partRandInt
	partRandString
	partUUID
	partPick
	partVU
	partIter
)

type part struct {
	kind   partKind
	text   string
	slot   int
	lo, hi int64
	picks  []string
}

var templateFuncs = map[string]bool{"randInt": true, "randString": true, "uuid": true, "pick": true, "vu": true, "iter": true, "data": true}

// TemplateError is a template that cannot be parsed; Offset is the byte
// offset in the template where the problem is.
type TemplateError struct {
	Offset int
	Msg    string
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("template at offset %d: %s", e.Offset, e.Msg)
}

// ParseTemplate compiles src against scope (nil: no variables, no columns).
func ParseTemplate(src string, scope *Scope) (*Template, error) {
	if scope == nil {
		scope = &Scope{}
	}
	t := &Template{src: src}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{kind: partText, text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); {
		if !strings.HasPrefix(src[i:], "{{") {
			lit.WriteByte(src[i])
			i++
			continue
		}
		if strings.HasPrefix(src[i:], "{{{{") {
			lit.WriteString("{{")
			i += 4
			continue
		}
		end := strings.Index(src[i+2:], "}}")
		if end < 0 {
			return nil, &TemplateError{Offset: i, Msg: `"{{" without a closing "}}"`}
		}
		body := src[i+2 : i+2+end]
		p, err := parseAction(body, i+2, scope)
		if err != nil {
			return nil, err
		}
		flush()
		t.parts = append(t.parts, p)
		i += 2 + end + 2
	}
	flush()
	return t, nil
}

// withPrefix returns the template with literal text before it: a
// request's path template joined to the scenario's base URL, so that
// errors in the path give offsets in the path as written.
func (t *Template) withPrefix(text string) *Template {
	return &Template{src: text + t.src, parts: append([]part{{kind: partText, text: text}}, t.parts...)}
}

// String returns the template's source.
func (t *Template) String() string { return t.src }

// Static reports whether the template has no actions, so callers can
// render it once.
func (t *Template) Static() bool {
	return len(t.parts) == 0 || (len(t.parts) == 1 && t.parts[0].kind == partText)
}

// Append renders the template into dst and returns the extended slice.
func (t *Template) Append(dst []byte, env *Env) []byte {
	for i := range t.parts {
		p := &t.parts[i]
		switch p.kind {
		case partText:
			dst = append(dst, p.text...)
		case partVar:
			if p.slot < len(env.Vars) {
				dst = append(dst, env.Vars[p.slot]...)
			}
		case partColumn:
			if p.slot < len(env.Row) {
				dst = append(dst, env.Row[p.slot]...)
			}
		case partRandInt:
			dst = strconv.AppendInt(dst, p.lo+env.Rand.Int64N(p.hi-p.lo+1), 10)
		case partRandString:
			const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
			for range p.lo {
				dst = append(dst, alphabet[env.Rand.IntN(len(alphabet))])
			}
		case partUUID:
			dst = appendUUID(dst, env.Rand)
		case partPick:
			dst = append(dst, p.picks[env.Rand.IntN(len(p.picks))]...)
		case partVU:
			dst = strconv.AppendInt(dst, int64(env.VU), 10)
		case partIter:
			dst = strconv.AppendUint(dst, env.Iter, 10)
		}
	}
	return dst
}

// Render returns the template rendered as a string.
func (t *Template) Render(env *Env) string { return string(t.Append(nil, env)) }

func appendUUID(dst []byte, r *rand.Rand) []byte {
	var b [16]byte
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (56 - 8*i))
		b[8+i] = byte(lo >> (56 - 8*i))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return append(dst, out[:]...)
}

// parseAction compiles the text between "{{" and "}}"; offset is where
// that text starts in the template, for errors.
func parseAction(body string, offset int, scope *Scope) (part, error) {
	args, err := splitArgs(body, offset)
	if err != nil {
		return part{}, err
	}
	if len(args) == 0 {
		return part{}, &TemplateError{Offset: offset, Msg: "empty action {{}}"}
	}
	name := args[0]
	bad := func(msg string, a ...any) (part, error) {
		return part{}, &TemplateError{Offset: offset, Msg: fmt.Sprintf(msg, a...)}
	}
	noArgs := func(p part) (part, error) {
		if len(args) != 1 {
			return bad("%s takes no arguments", name)
		}
		return p, nil
	}
	switch {
	case name == "uuid":
		return noArgs(part{kind: partUUID})
	case name == "vu":
		return noArgs(part{kind: partVU})
	case name == "iter":
		return noArgs(part{kind: partIter})
	case name == "randInt":
		if len(args) != 3 {
			return bad("randInt takes two integers, low and high: {{randInt 1 100}}")
		}
		lo, err1 := strconv.ParseInt(args[1], 10, 64)
		hi, err2 := strconv.ParseInt(args[2], 10, 64)
		if err1 != nil || err2 != nil {
			return bad("randInt bounds %q and %q must be integers", args[1], args[2])
		}
		if hi < lo {
			return bad("randInt high %d is below low %d", hi, lo)
		}
		if hi-lo < 0 || hi-lo == 1<<63-1 {
			return bad("randInt range %d..%d is too wide", lo, hi)
		}
		return part{kind: partRandInt, lo: lo, hi: hi}, nil
	case name == "randString":
		if len(args) != 2 {
			return bad("randString takes a length: {{randString 12}}")
		}
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 || n > 1<<16 {
			return bad("randString length %q must be an integer from 1 to 65536", args[1])
		}
		return part{kind: partRandString, lo: int64(n)}, nil
	case name == "pick":
		if len(args) < 2 {
			return bad("pick needs at least one choice: {{pick a b c}}")
		}
		return part{kind: partPick, picks: append([]string(nil), args[1:]...)}, nil
	case strings.HasPrefix(name, "data."):
		col := strings.TrimPrefix(name, "data.")
		if len(args) != 1 {
			return bad("data.%s takes no arguments", col)
		}
		i, ok := scope.columns[col]
		if !ok {
			if len(scope.columns) == 0 {
				return bad("data.%s: the scenario has no data file", col)
			}
			return bad("unknown data column %q (columns: %s)", col, strings.Join(sortedKeys(scope.columns), ", "))
		}
		return part{kind: partColumn, slot: i}, nil
	}
	if len(args) != 1 {
		return bad("unknown function %q", name)
	}
	slot, ok := scope.vars[name]
	if !ok {
		known := sortedKeys(scope.vars)
		if len(known) == 0 {
			return bad("unknown variable %q (no variables are defined)", name)
		}
		return bad("unknown variable %q (defined: %s)", name, strings.Join(known, ", "))
	}
	return part{kind: partVar, slot: slot}, nil
}

// splitArgs splits an action into words; double-quoted words may hold
// spaces and Go escapes.
func splitArgs(body string, offset int) ([]string, error) {
	var args []string
	for i := 0; i < len(body); {
		switch c := body[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '"':
			j := i + 1
			for j < len(body) && body[j] != '"' {
				if body[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(body) {
				return nil, &TemplateError{Offset: offset + i, Msg: "unterminated quoted argument"}
			}
			s, err := strconv.Unquote(body[i : j+1])
			if err != nil {
				return nil, &TemplateError{Offset: offset + i, Msg: fmt.Sprintf("bad quoted argument %s", body[i:j+1])}
			}
			args = append(args, s)
			i = j + 1
		default:
			j := i
			for j < len(body) && body[j] != ' ' && body[j] != '\t' {
				j++
			}
			args = append(args, body[i:j])
			i = j
		}
	}
	return args, nil
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
