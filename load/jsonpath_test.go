package load

import (
	"strings"
	"testing"
)

func TestJSONPathLookup(t *testing.T) {
	doc, err := DecodeJSON([]byte(`{"data":{"token":"t0k","n":12.50,"ok":true,"nil":null},
		"items":[{"id":1},{"id":2},{"id":3}],"odd key":{"x":"y"},"list":[1,2]}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path  string
		want  string
		found bool
	}{
		{"$.data.token", "t0k", true},
		{"$.data.n", "12.50", true},
		{"$.data.ok", "true", true},
		{"$.data.nil", "null", true},
		{"$.items[0].id", "1", true},
		{"$.items[-1].id", "3", true},
		{"$['odd key'].x", "y", true},
		{`$["odd key"]["x"]`, "y", true},
		{"$.list", "[1,2]", true},
		{"$.items[3]", "", false},
		{"$.items[-4]", "", false},
		{"$.data.missing", "", false},
		{"$.data.token.deeper", "", false},
		{"$.items.id", "", false},
	}
	for _, tt := range tests {
		p, err := ParseJSONPath(tt.path)
		if err != nil {
			t.Fatalf("ParseJSONPath(%q): %v", tt.path, err)
		}
		v, ok := p.Lookup(doc)
		if ok != tt.found || (ok && JSONText(v) != tt.want) {
			t.Errorf("%s = %q, %v; want %q, %v", tt.path, JSONText(v), ok, tt.want, tt.found)
		}
	}
	if p, _ := ParseJSONPath("$"); JSONText(must(p.Lookup(doc))) == "" {
		t.Error("$ did not return the document")
	}
}

func must(v any, _ bool) any { return v }

func TestJSONPathErrors(t *testing.T) {
	for path, msg := range map[string]string{
		"data.token":   "must start with $",
		"$..x":         "empty member name",
		"$.a[":         "without ']'",
		"$.a[x]":       "want an index or a quoted name",
		"$x":           "want '.' or '['",
		"$.items[1.5]": "want an index",
	} {
		_, err := ParseJSONPath(path)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseJSONPath(%q) = %v, want error containing %q", path, err, msg)
		}
	}
	if _, err := DecodeJSON([]byte("{nope")); err == nil {
		t.Error("DecodeJSON accepted broken JSON")
	}
}

func FuzzParseJSONPath(f *testing.F) {
	for _, s := range []string{"$", "$.a.b", "$['x y'][0]", "$.a[-1]", "$.", "$[", "x"} {
		f.Add(s)
	}
	doc, _ := DecodeJSON([]byte(`{"a":{"b":[1,{"c":2}]},"x y":[true]}`))
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParseJSONPath(src)
		if err != nil {
			return
		}
		v, ok := p.Lookup(doc)
		if ok {
			_ = JSONText(v)
		}
	})
}
