package ai

import (
	"encoding/binary"
	"math/bits"

	"github.com/relia-dev/relia/ai/wire"
)

// validJSON reports whether data is one JSON value with nothing but
// whitespace around it: what json.Valid reports (its limit of 10,000
// nested arrays and objects included, and like it, any bytes of 0x80 and
// above in strings), for the request and answer bodies every call
// checks. json.Valid runs a state machine through a function call per
// byte; this walks the grammar directly, several times faster
// (BenchmarkValidJSON), and FuzzValidJSON holds it to json.Valid.
func validJSON(data []byte) bool {
	i, ok := validValue(data, skipSpace(data, 0), 0)
	return ok && skipSpace(data, i) == len(data)
}

// maxJSONDepth is encoding/json's bound on nested arrays and objects.
const maxJSONDepth = 10000

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// validValue checks the value at data[i:] (i past any whitespace), at
// depth arrays and objects deep, and returns the index past it.
func validValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '"':
		return validString(data, i)
	case c == '{':
		return validObject(data, i, depth+1)
	case c == '[':
		return validArray(data, i, depth+1)
	case c == '-' || c >= '0' && c <= '9':
		return validNumber(data, i)
	case c == 't':
		return validLiteral(data, i, "true")
	case c == 'f':
		return validLiteral(data, i, "false")
	case c == 'n':
		return validLiteral(data, i, "null")
	}
	return i, false
}

func validLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// stringPlain marks the bytes a JSON string holds as they are: all but
// its quote, the escape and the control characters. One test of a table a
// byte is what the strings of a stream's chunks mostly take.
var stringPlain = func() (plain [256]bool) {
	for c := 0x20; c < len(plain); c++ {
		plain[c] = c != '"' && c != '\\'
	}
	return plain
}()

// plainRun returns the index of the first byte at or after data[i] that
// a string does not hold as it is (stringPlain), or len(data): eight
// bytes a step while they are all plain, then a byte a step. Of the
// three tests of each byte, each flags the lowest byte it matches
// exactly (a borrow can flag a byte above it, never below).
func plainRun(data []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(data); i += 8 {
		v := binary.LittleEndian.Uint64(data[i:])
		quote, escape := v^('"'*ones), v^('\\'*ones)
		hit := (quote-ones)&^quote | (escape-ones)&^escape | (v-0x20*ones)&^v
		if hit &= highs; hit != 0 {
			return i + bits.TrailingZeros64(hit)/8
		}
	}
	for i < len(data) && stringPlain[data[i]] {
		i++
	}
	return i
}

// validString checks the string opening at data[i].
func validString(data []byte, i int) (int, bool) {
	i++
	for i < len(data) {
		c := data[i]
		if stringPlain[c] {
			i = plainRun(data, i+1)
			continue
		}
		switch {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			if i+1 >= len(data) {
				return i, false
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if len(data)-i < 6 {
					return i, false
				}
				for _, h := range data[i+2 : i+6] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

// validKey checks the key opening at data[i] as validString does, and
// reports whether it is plain: no escape, so its bytes are its name.
func validKey(data []byte, i int) (end int, plain, ok bool) {
	j := plainRun(data, i+1)
	if j < len(data) && data[j] == '"' {
		return j + 1, true, true
	}
	end, ok = validString(data, i)
	return end, false, ok
}

// keyIs reports whether a member's key (quoted, as walkObject hands it)
// is name, which holds no byte that JSON escapes: a plain key by its
// bytes, a key with escapes by what they say.
func keyIs(key []byte, plain bool, name string) bool {
	if plain {
		return len(key) == len(name)+2 && string(key[1:len(key)-1]) == name
	}
	return wire.KeyIs(key, name)
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// validNumber checks the number at data[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func validNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		i = skipDigits(data, i+1)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := skipDigits(data, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := skipDigits(data, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func skipDigits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// validObject checks the object opening at data[i], depth deep.
func validObject(data []byte, i, depth int) (int, bool) {
	return walkObject(data, i, depth, func(_ []byte, _ bool, at int) (int, bool) { return validValue(data, at, depth) })
}

// validArray checks the array opening at data[i], depth deep.
func validArray(data []byte, i, depth int) (int, bool) {
	return walkArray(data, i, depth, func(at int) (int, bool) { return validValue(data, at, depth) })
}

// walkObject checks the object opening at data[i], depth deep, handing
// each member's key (quoted, as written; plain when it holds no escape)
// and the index of its value to member, which checks the value (at
// depth) and returns the index past it: a scan that reads some members
// checks the whole object in the same walk.
func walkObject(data []byte, i, depth int, member func(key []byte, plain bool, at int) (int, bool)) (int, bool) {
	i, more, ok := validOpen(data, i, depth, '}')
	for ok && more {
		if i >= len(data) || data[i] != '"' {
			return i, false
		}
		key := i
		var plain bool
		if i, plain, ok = validKey(data, i); !ok {
			return i, false
		}
		k := data[key:i]
		i = skipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return i, false
		}
		if i, ok = member(k, plain, skipSpace(data, i+1)); !ok {
			return i, false
		}
		i, more, ok = validNext(data, i, '}')
	}
	return i, ok
}

// walkArray checks the array opening at data[i], depth deep, handing the
// index of each element to elem, which checks it (at depth) and returns
// the index past it.
func walkArray(data []byte, i, depth int, elem func(at int) (int, bool)) (int, bool) {
	i, more, ok := validOpen(data, i, depth, ']')
	for ok && more {
		if i, ok = elem(i); !ok {
			return i, false
		}
		i, more, ok = validNext(data, i, ']')
	}
	return i, ok
}

// validOpen reads the opening of an array or object at data[i] (its
// end, close, when it is empty); more says a member or element follows,
// at the index it returns.
func validOpen(data []byte, i, depth int, close byte) (int, bool, bool) {
	if depth > maxJSONDepth {
		return i, false, false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == close {
		return i + 1, false, true
	}
	return i, true, true
}

// validNext reads what follows a member or an element at data[i]: a
// comma, and more follows, or close, the end.
func validNext(data []byte, i int, close byte) (int, bool, bool) {
	i = skipSpace(data, i)
	switch {
	case i >= len(data):
		return i, false, false
	case data[i] == ',':
		return skipSpace(data, i+1), true, true
	case data[i] == close:
		return i + 1, false, true
	}
	return i, false, false
}
