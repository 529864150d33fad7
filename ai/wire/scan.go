package wire

import "errors"

// Members calls fn with each top-level member of the JSON object obj, in
// order: its key as written (quoted, escapes kept: compare it with
// KeyIs) and its raw value. fn returning false stops the walk. Like
// Member it skips values rather than decoding them, so reading the few
// members of an event relia needs costs a scan; obj must be one object,
// with nothing after it but space.
func Members(obj []byte, fn func(key, value []byte) bool) error {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrNotObject
	}
	i = skipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		if skipSpace(obj, i+1) != len(obj) {
			return ErrNotObject
		}
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return ErrNotObject
		}
		ks := i
		var err error
		if i, err = skipString(obj, i); err != nil {
			return err
		}
		key := obj[ks:i]
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] != ':' {
			return ErrNotObject
		}
		i = skipSpace(obj, i+1)
		vs := i
		if i, err = skipValue(obj, i, 0); err != nil {
			return err
		}
		if !fn(key, obj[vs:i]) {
			return nil
		}
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return ErrNotObject
		}
		switch obj[i] {
		case ',':
			i = skipSpace(obj, i+1)
		case '}':
			if skipSpace(obj, i+1) != len(obj) {
				return ErrNotObject
			}
			return nil
		default:
			return ErrNotObject
		}
	}
}

// Elements calls fn with each element of the JSON array arr, raw, in
// order; fn returning false stops the walk.
func Elements(arr []byte, fn func(elem []byte) bool) error {
	i := skipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrNotArray
	}
	i = skipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		if skipSpace(arr, i+1) != len(arr) {
			return ErrNotArray
		}
		return nil
	}
	for {
		s := i
		var err error
		if i, err = skipValue(arr, i, 0); err != nil {
			return err
		}
		if !fn(arr[s:i]) {
			return nil
		}
		i = skipSpace(arr, i)
		if i >= len(arr) {
			return ErrNotArray
		}
		switch arr[i] {
		case ',':
			i = skipSpace(arr, i+1)
		case ']':
			if skipSpace(arr, i+1) != len(arr) {
				return ErrNotArray
			}
			return nil
		default:
			return ErrNotArray
		}
	}
}

// ErrNotArray is the error of a read that wants a JSON array and finds
// something else.
var ErrNotArray = errors.New("json: not an array")

// KeyIs reports whether a key as Members gives it (quoted) is name.
func KeyIs(quoted []byte, name string) bool { return keyEquals(quoted, name) }

// IsNull reports whether a raw JSON value is null.
func IsNull(v []byte) bool { return string(v) == "null" }
