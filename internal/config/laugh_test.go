package config

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestDecodeBoundsAliasExpansion: nested aliases and merge keys name an
// exponential number of values; decoding must stop with an error rather
// than hang.
func TestDecodeBoundsAliasExpansion(t *testing.T) {
	t.Parallel()
	head := "kind: T\nversion: relia/v1\nspec:\n  name: a\n"
	for _, tc := range []struct{ name, src, err string }{
		{"merges", head + "  extra: &a {x: 1, y: 2}\n  raw: &b {<<: [*a,*a,*a,*a,*a,*a,*a,*a,*a]}\n" +
			"  labels: &c {<<: [*b,*b,*b,*b,*b,*b,*b,*b,*b]}\n", ""},
		{"lists", head + "  extra: &a [{name: x},{name: x},{name: x},{name: x},{name: x},{name: x},{name: x},{name: x}]\n" +
			"  raw: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n  nested: {name: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]}\n" +
			"  labels: {}\n", "expected a string"},
	} {
		docs, err := Parse("x.yaml", []byte(tc.src))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var v testDoc
		err = docs[0].Decode(&v)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Decode = %v, want error containing %q", tc.name, err, tc.err)
		}
	}
	// A list of lists of lists decoded into a deep structure hits the bound.
	src := head + "  a: &a [{name: x},{name: x},{name: x},{name: x},{name: x},{name: x},{name: x},{name: x},{name: x},{name: x}]\n"
	prev := "a"
	for _, name := range []string{"b", "c", "d", "e", "f"} {
		src += "  " + name + ": &" + name + " [" + strings.Repeat("*"+prev+",", 9) + "*" + prev + "]\n"
		prev = name
	}
	src += "  steps: *" + prev + "\n"
	docs, err := ParseAny("deep.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	var deep struct {
		Spec struct {
			Name             string
			A, B, C, D, E, F yaml.Node
			Steps            [][][][][][]testStep
		}
	}
	err = docs[0].Decode(&deep)
	if err == nil || !strings.Contains(err.Error(), "more than 100000 values") {
		t.Errorf("deep alias expansion: %v, want the bound's error", err)
	}
}
