package load

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func testScope(t *testing.T) *Scope {
	t.Helper()
	s, err := NewScope([]string{"token", "user_id"}, []string{"email", "plan"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTemplateRendersEveryAction(t *testing.T) {
	scope := testScope(t)
	env := &Env{
		Vars: []string{"abc", "42"},
		Row:  []string{"a@example.com", "gold"},
		Rand: rand.New(rand.NewPCG(1, 2)),
		VU:   7,
		Iter: 3,
	}
	tests := []struct {
		src  string
		want *regexp.Regexp
	}{
		{"plain", regexp.MustCompile(`^plain$`)},
		{"Bearer {{token}}", regexp.MustCompile(`^Bearer abc$`)},
		{"/users/{{ user_id }}/x", regexp.MustCompile(`^/users/42/x$`)},
		{"{{data.email}}:{{data.plan}}", regexp.MustCompile(`^a@example\.com:gold$`)},
		{"n={{randInt 5 9}}", regexp.MustCompile(`^n=[5-9]$`)},
		{"n={{randInt -3 -1}}", regexp.MustCompile(`^n=-[1-3]$`)},
		{"{{randString 12}}", regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)},
		{"{{uuid}}", regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)},
		{`{{pick red "dark blue"}}`, regexp.MustCompile(`^(red|dark blue)$`)},
		{"vu{{vu}}-{{iter}}", regexp.MustCompile(`^vu7-3$`)},
		{"{{{{literal}}", regexp.MustCompile(`^\{\{literal\}\}$`)},
	}
	for _, tt := range tests {
		tmpl, err := ParseTemplate(tt.src, scope)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.src, err)
		}
		for range 50 {
			if got := tmpl.Render(env); !tt.want.MatchString(got) {
				t.Fatalf("%q rendered %q, want match of %s", tt.src, got, tt.want)
			}
		}
	}
}

func TestTemplateRandomCoversRange(t *testing.T) {
	tmpl, err := ParseTemplate("{{randInt 1 4}}", nil)
	if err != nil {
		t.Fatal(err)
	}
	env := &Env{Rand: rand.New(rand.NewPCG(9, 9))}
	seen := map[string]int{}
	for range 4000 {
		seen[tmpl.Render(env)]++
	}
	for v := 1; v <= 4; v++ {
		n := seen[strconv.Itoa(v)]
		if n < 800 || n > 1200 {
			t.Fatalf("value %d drawn %d times of 4000, want about 1000: %v", v, n, seen)
		}
	}
	if len(seen) != 4 {
		t.Fatalf("values outside [1,4]: %v", seen)
	}
}

func TestTemplateSameSeedSameOutput(t *testing.T) {
	tmpl, err := ParseTemplate("{{uuid}} {{randString 8}} {{pick a b c}}", nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &Env{Rand: rand.New(rand.NewPCG(5, 6))}
	b := &Env{Rand: rand.New(rand.NewPCG(5, 6))}
	for range 10 {
		if x, y := tmpl.Render(a), tmpl.Render(b); x != y {
			t.Fatalf("same seed rendered %q and %q", x, y)
		}
	}
}

func TestTemplateErrors(t *testing.T) {
	scope := testScope(t)
	tests := []struct {
		src    string
		offset int
		msg    string
	}{
		{"x{{token", 1, `without a closing`},
		{"{{}}", 2, "empty action"},
		{"/a/{{tokn}}", 5, `unknown variable "tokn" (defined: token, user_id)`},
		{"{{data.mail}}", 2, `unknown data column "mail" (columns: email, plan)`},
		{"{{randInt 9 1}}", 2, "high 1 is below low 9"},
		{"{{randInt a 1}}", 2, "must be integers"},
		{"{{randInt 1}}", 2, "randInt takes two integers"},
		{"{{randString 0}}", 2, "from 1 to 65536"},
		{"{{pick}}", 2, "at least one choice"},
		{"{{uuid 4}}", 2, "takes no arguments"},
		{`{{pick "open}}`, 7, "unterminated quoted argument"},
		{"{{frobnicate 1}}", 2, `unknown function "frobnicate"`},
	}
	for _, tt := range tests {
		_, err := ParseTemplate(tt.src, scope)
		var te *TemplateError
		if !errors.As(err, &te) {
			t.Fatalf("ParseTemplate(%q) = %v, want a *TemplateError", tt.src, err)
		}
		if te.Offset != tt.offset || !strings.Contains(te.Msg, tt.msg) {
			t.Errorf("ParseTemplate(%q) = offset %d %q, want offset %d containing %q", tt.src, te.Offset, te.Msg, tt.offset, tt.msg)
		}
	}
	_, err := ParseTemplate("{{data.email}}", nil)
	if err == nil || !strings.Contains(err.Error(), "no data file") {
		t.Fatalf("data column without a data file: %v", err)
	}
}

func TestScopeRejectsBadNames(t *testing.T) {
	for _, vars := range [][]string{{"1x"}, {"a-b"}, {""}, {"x", "x"}, {"uuid"}} {
		if _, err := NewScope(vars, nil); err == nil {
			t.Errorf("NewScope(%q) accepted a bad variable set", vars)
		}
	}
	if _, err := NewScope(nil, []string{"a", "a"}); err == nil {
		t.Error("NewScope accepted a duplicate column")
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{"", "plain", "{{token}}", "{{randInt 1 100}}", `{{pick a "b c"}}`, "{{{{", "{{data.email}}", "{{randString 3}}{{uuid}}", "{{randInt -9223372036854775808 9223372036854775807}}"} {
		f.Add(s)
	}
	scope, _ := NewScope([]string{"token"}, []string{"email"})
	f.Fuzz(func(t *testing.T, src string) {
		tmpl, err := ParseTemplate(src, scope)
		if err != nil {
			var te *TemplateError
			if !errors.As(err, &te) || te.Offset < 0 || te.Offset > len(src) {
				t.Fatalf("error %v has no valid offset", err)
			}
			return
		}
		env := &Env{Vars: []string{"v"}, Row: []string{"r"}, Rand: rand.New(rand.NewPCG(1, 1))}
		_ = tmpl.Render(env)
	})
}

func BenchmarkTemplateAppend(b *testing.B) {
	scope, _ := NewScope([]string{"token"}, nil)
	tmpl, _ := ParseTemplate(`{"user":"{{token}}","amount":{{randInt 1 500}},"id":"{{uuid}}"}`, scope)
	env := &Env{Vars: []string{"abc"}, Rand: rand.New(rand.NewPCG(1, 1))}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = tmpl.Append(buf[:0], env)
	}
}
