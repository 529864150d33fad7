package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMembersAndElements(t *testing.T) {
	t.Parallel()
	var got []string
	err := Members([]byte(` {"a" : [1, {"b":2}] ,"c\u0064":"}","e":null} `), func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	})
	if want := `"a"=[1, {"b":2}] "c\u0064"="}" "e"=null`; err != nil || strings.Join(got, " ") != want {
		t.Errorf("Members: %q %v, want %q", got, err, want)
	}
	if !KeyIs([]byte(`"c\u0064"`), "cd") || KeyIs([]byte(`"a"`), "b") {
		t.Error("KeyIs compares unquoted keys")
	}
	got = got[:0]
	err = Elements([]byte(`[ 1, "x" ,{"y":[2]}]`), func(e []byte) bool {
		got = append(got, string(e))
		return true
	})
	if want := `1|"x"|{"y":[2]}`; err != nil || strings.Join(got, "|") != want {
		t.Errorf("Elements: %q %v, want %q", got, err, want)
	}
	for _, bad := range []string{`{"a":1`, `{"a":1} x`, `[1,]`, `{"a" 1}`, `[1 2]`, `"x"`} {
		if Members([]byte(bad), func(_, _ []byte) bool { return true }) == nil && Elements([]byte(bad), func([]byte) bool { return true }) == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// FuzzMembers: on valid JSON, Members and Elements find the members and
// elements encoding/json finds; on any input they neither panic nor read
// past it.
func FuzzMembers(f *testing.F) {
	f.Add([]byte(`{"choices":[{"delta":{"content":"hi"},"finish_reason":null}],"usage":null}`))
	f.Add([]byte(`[1,[2],{"a":"\"}"}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		members, elements := 0, 0
		merr := Members(in, func(k, v []byte) bool {
			members++
			if k[0] != '"' || len(v) == 0 {
				t.Fatalf("member %q: %q", k, v)
			}
			return true
		})
		eerr := Elements(in, func(e []byte) bool { elements++; return true })
		if !json.Valid(in) {
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(in, &obj) == nil && obj != nil && (merr != nil || members < len(obj)) {
			t.Fatalf("%q: %d members (%v), encoding/json finds %d", in, members, merr, len(obj))
		}
		var arr []json.RawMessage
		if json.Unmarshal(in, &arr) == nil && arr != nil && (eerr != nil || elements != len(arr)) {
			t.Fatalf("%q: %d elements (%v), encoding/json finds %d", in, elements, eerr, len(arr))
		}
	})
}

// FuzzKeyIs holds KeyIs to encoding/json's reading of the key: a quoted
// key (one that json.Valid accepts as a string) is the name when it
// unquotes to it. Both are valid UTF-8, as the names relia looks for are:
// encoding/json reads a byte that is not as U+FFFD, KeyIs as itself.
func FuzzKeyIs(f *testing.F) {
	for _, seed := range [][2]string{
		{`"choices"`, "choices"}, {`"ch\u006fices"`, "choices"}, {`"choice"`, "choices"},
		{`"choicesx"`, "choices"}, {`"a\\b"`, `a\b`}, {`"a\b"`, `a\b`}, {`"a\\"`, `a\`},
		{`"\u00e9"`, "é"}, {`"\ud800"`, "\uFFFD"}, {`""`, ""},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, quoted, name string) {
		if len(quoted) < 2 || quoted[0] != '"' || quoted[len(quoted)-1] != '"' || !json.Valid([]byte(quoted)) ||
			!utf8.ValidString(quoted) || !utf8.ValidString(name) {
			return
		}
		var s string
		if err := json.Unmarshal([]byte(quoted), &s); err != nil {
			return
		}
		if got, want := KeyIs([]byte(quoted), name), s == name; got != want {
			t.Errorf("KeyIs(%s, %q) = %v, want %v (the key reads %q)", quoted, name, got, want, s)
		}
	})
}
