package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/config/fielddoc"
)

type aliased struct {
	Spec struct {
		RetryOn []string `yaml:"retryOn" config:"alias=on"`
	} `yaml:"spec"`
}

// TestAliasReadsTheOldName: a renamed key is read under its old name
// too, and setting both is a duplicate.
func TestAliasReadsTheOldName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want, err string }{
		{"spec: {retryOn: [5xx]}\n", "5xx", ""},
		{"spec: {on: [reset]}\n", "reset", ""},
		{"spec: {on: [reset], retryOn: [5xx]}\n", "", "duplicate field"},
		{"spec: {retryOn: [5xx], on: [reset]}\n", "", "on is another name for retryOn"},
	} {
		docs, err := config.Parse("a.yaml", []byte("kind: T\nversion: relia/v1\n"+tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var v aliased
		err = docs[0].Decode(&v)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one with %q", tc.body, err, tc.err)
		case tc.err == "" && (err != nil || strings.Join(v.Spec.RetryOn, ",") != tc.want):
			t.Errorf("%q: %v, %v; want %s", tc.body, v.Spec.RetryOn, err, tc.want)
		}
	}
	schema, err := config.Schema("T", aliased{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(schema), `"retryOn"`) || !strings.Contains(string(schema), "Another name for retryOn") {
		t.Errorf("the schema does not describe the alias:\n%s", schema)
	}
}

// TestFieldDocsAreCurrent: fielddocs_gen.go holds what go generate
// would write from the config structs' doc comments now.
func TestFieldDocsAreCurrent(t *testing.T) {
	t.Parallel()
	docs, err := fielddoc.Collect(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	want, err := docs.GoFile("config")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("fielddocs_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Error("internal/config/fielddocs_gen.go is stale: run go generate ./internal/config")
	}
	if !strings.Contains(docs.Fields["github.com/relia-dev/relia/gateway.Retry.Attempts"], "attempts is the most attempts") {
		t.Errorf("gateway's retry.attempts: %q", docs.Fields["github.com/relia-dev/relia/gateway.Retry.Attempts"])
	}
}
