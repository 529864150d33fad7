package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/internal/config/configtest"
)

type testStep struct {
	Name  string        `yaml:"name" config:"required"`
	Delay time.Duration `yaml:"delay"`
}

type testBase struct {
	Owner string `yaml:"owner"`
}

type testSpec struct {
	Name     string            `yaml:"name" config:"required"`
	Count    int               `yaml:"count"`
	Small    int8              `yaml:"small"`
	Limit    uint              `yaml:"limit"`
	Enabled  bool              `yaml:"enabled"`
	Ratio    Ratio             `yaml:"ratio"`
	Timeout  time.Duration     `yaml:"timeout"`
	Size     Size              `yaml:"size"`
	Weight   float64           `yaml:"weight"`
	Labels   map[string]string `yaml:"labels"`
	Steps    []testStep        `yaml:"steps"`
	Nested   *testStep         `yaml:"nested"`
	Extra    any               `yaml:"extra"`
	Raw      yaml.Node         `yaml:"raw"`
	Untagged string
	Ignored  string `yaml:"-"`
	testBase `yaml:",inline"`
}

type testDoc struct {
	Spec testSpec `yaml:"spec" config:"required"`
}

func decodeOne(t *testing.T, src string) (testDoc, error) {
	t.Helper()
	docs, err := Parse("test.yaml", []byte(src))
	if err != nil {
		return testDoc{}, err
	}
	if len(docs) != 1 {
		t.Fatalf("got %d documents, want 1", len(docs))
	}
	var d testDoc
	return d, docs[0].Decode(&d)
}

func TestDecodeValid(t *testing.T) {
	t.Parallel()
	src := `kind: Test
version: relia/v1
spec:
  name: svc
  count: 1_000
  small: -8
  limit: 0x10
  enabled: true
  ratio: 99.9%
  timeout: 1d12h
  size: 1MiB
  weight: 2
  labels: {tier: 1, team: payments}
  steps:
    - &step {name: a, delay: 250ms}
    - <<: *step
      name: b
  nested: *step
  extra: {a: [1, 2]}
  raw: {free: form}
  untagged: yes-string
  owner: team-a
`
	got, err := decodeOne(t, src)
	if err != nil {
		t.Fatal(err)
	}
	s := got.Spec
	want := testSpec{
		Name: "svc", Count: 1000, Small: -8, Limit: 16, Enabled: true, Ratio: 0.999,
		Timeout: 36 * time.Hour, Size: 1 << 20, Weight: 2,
		Labels:   map[string]string{"tier": "1", "team": "payments"},
		Steps:    []testStep{{"a", 250 * time.Millisecond}, {"b", 250 * time.Millisecond}},
		Nested:   &testStep{"a", 250 * time.Millisecond},
		Extra:    map[string]any{"a": []any{1, 2}},
		Untagged: "yes-string",
		testBase: testBase{Owner: "team-a"},
	}
	if s.Raw.Kind != yaml.MappingNode || s.Raw.Line != 20 {
		t.Errorf("raw node = kind %v line %d, want the mapping on line 20", s.Raw.Kind, s.Raw.Line)
	}
	s.Raw = yaml.Node{}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", s, want)
	}
}

// TestDecodeErrors pins every error message, with its position, in a
// golden file: the messages are the user interface of every config.
func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	head := "kind: Test\nversion: relia/v1\n"
	cases := []struct{ name, src string }{
		{"unknown field with suggestion", head + "spec:\n  name: a\n  cuont: 3\n"},
		{"unknown field without suggestion", head + "spec:\n  name: a\n  zzzzzz: 3\n"},
		{"unknown top-level field", head + "spec: {name: a}\nspce: {}\n"},
		{"wrong type string for int", head + "spec:\n  name: a\n  count: three\n"},
		{"wrong type list for string", head + "spec:\n  name: [a, b]\n"},
		{"wrong type mapping for list", head + "spec:\n  name: a\n  steps: {name: x}\n"},
		{"int out of range", head + "spec:\n  name: a\n  small: 300\n"},
		{"negative uint", head + "spec:\n  name: a\n  limit: -1\n"},
		{"float for int", head + "spec:\n  name: a\n  count: 1.5\n"},
		{"string for bool", head + "spec:\n  name: a\n  enabled: \"true\"\n"},
		{"infinite float", head + "spec:\n  name: a\n  weight: .inf\n"},
		{"negative duration", head + "spec:\n  name: a\n  timeout: -5s\n"},
		{"duration without unit", head + "spec:\n  name: a\n  timeout: 5\n"},
		{"duration of wrong type", head + "spec:\n  name: a\n  timeout: [1s]\n"},
		{"ratio above one", head + "spec:\n  name: a\n  ratio: 1.5\n"},
		{"ratio percent above 100", head + "spec:\n  name: a\n  ratio: 150%\n"},
		{"ratio plain string", head + "spec:\n  name: a\n  ratio: high\n"},
		{"negative size", head + "spec:\n  name: a\n  size: -1KB\n"},
		{"size bad unit", head + "spec:\n  name: a\n  size: 1XB\n"},
		{"duplicate field", head + "spec:\n  name: a\n  name: b\n"},
		{"duplicate map key", head + "spec:\n  name: a\n  labels: {x: 1, x: 2}\n"},
		{"missing required", head + "spec:\n  count: 1\n"},
		{"null required", head + "spec:\n  name:\n"},
		{"missing required in list item", head + "spec:\n  name: a\n  steps:\n    - delay: 1s\n"},
		{"error in list item", head + "spec:\n  name: a\n  steps:\n    - name: x\n    - name: y\n      delay: soon\n"},
		{"missing spec", head},
		{"null list item", head + "spec:\n  name: a\n  steps:\n    -\n"},
		{"several errors", head + "spec:\n  name: a\n  count: x\n  timeout: -1s\n  bogus: 1\n"},
		{"non-scalar key", head + "spec:\n  name: a\n  labels: {[a]: b}\n"},
		{"missing kind", "version: relia/v1\nspec: {name: a}\n"},
		{"missing version", "kind: Test\nspec: {name: a}\n"},
		{"wrong version", "kind: Test\nversion: relia/v2\nspec: {name: a}\n"},
		{"not a mapping", "- a\n- b\n"},
		{"syntax error", "kind: Test\nversion: relia/v1\nspec: {name: a\n"},
		{"tab indentation", "kind: Test\nversion: relia/v1\nspec:\n\tname: a\n"},
	}
	var out strings.Builder
	for _, tc := range cases {
		_, err := decodeOne(t, tc.src)
		fmt.Fprintf(&out, "== %s\n", tc.name)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.File != "test.yaml" {
			t.Errorf("%s: error %v is not a *config.Error naming the file", tc.name, err)
		}
		fmt.Fprintf(&out, "%v\n", err)
	}
	configtest.Golden(t, filepath.Join("testdata", "errors.golden"), []byte(out.String()))
}

func TestParseSeveralDocuments(t *testing.T) {
	t.Parallel()
	src := "---\nkind: A\nversion: relia/v1\n---\n---\nkind: B\nversion: relia/v1\nspec: {}\n...\n"
	docs, err := Parse("multi.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Kind != "A" || docs[1].Kind != "B" || docs[1].Node.Line != 6 {
		t.Fatalf("got %+v, want kinds A and B, B starting on line 6", docs)
	}
	if docs[1].File != "multi.yaml" || docs[1].Version != Version {
		t.Errorf("document B: file %q version %q", docs[1].File, docs[1].Version)
	}
	// ParseAny reads other tools' envelopes without checking them.
	docs, err = ParseAny("openslo.yaml", []byte("apiVersion: openslo/v1\nkind: SLO\n---\nversion: prometheus/v1\nservice: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if docs[0].Version != "openslo/v1" || docs[0].Kind != "SLO" || docs[1].Version != "prometheus/v1" || docs[1].Kind != "" {
		t.Errorf("ParseAny envelopes: %+v", docs)
	}
	if _, err := Parse("openslo.yaml", []byte("apiVersion: openslo/v1\nkind: SLO\n")); err == nil || !strings.Contains(err.Error(), "openslo/v1") {
		t.Errorf("Parse of an OpenSLO document: %v, want a version error", err)
	}
}

func TestErrorfPointsAtField(t *testing.T) {
	t.Parallel()
	src := "kind: Test\nversion: relia/v1\nspec:\n  name: a\n  steps:\n    - name: x\n    - name: y\n      delay: 1s\n"
	docs, err := Parse("at.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	d := docs[0]
	for _, tc := range []struct{ path, want string }{
		{"spec.steps[1].delay", "at.yaml:8:14: spec.steps[1].delay: too slow"},
		{"spec.steps[1]", "at.yaml:7:7: spec.steps[1]: too slow"},
		{"spec.name", "at.yaml:4:9: spec.name: too slow"},
		// Absent fields point at their nearest present parent.
		{"spec.steps[1].timeout", "at.yaml:7:7: spec.steps[1].timeout: too slow"},
		{"spec.steps[5].delay", "at.yaml:6:5: spec.steps[5].delay: too slow"},
		{"spec.period", "at.yaml:4:3: spec.period: too slow"},
		{"", "at.yaml:1:1: too slow"},
	} {
		if got := d.Errorf(tc.path, "too slow").Error(); got != tc.want {
			t.Errorf("Errorf(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestDecodeNeedsPointer(t *testing.T) {
	t.Parallel()
	docs, err := Parse("p.yaml", []byte("kind: Test\nversion: relia/v1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var d testDoc
	if err := docs[0].Decode(d); err == nil {
		t.Error("Decode into a non-pointer succeeded")
	}
}

func TestReadFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(path, []byte("kind: Test\nversion: relia/v1\nspec: {name: a, count: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d testDoc
	err = docs[0].Decode(&d)
	if err == nil || !strings.HasPrefix(err.Error(), path+":3:24: spec.count: expected an integer") {
		t.Errorf("error %v does not name %s and the field", err, path+":3:24")
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
}

func TestSchema(t *testing.T) {
	t.Parallel()
	got, err := Schema("Test", &testDoc{})
	if err != nil {
		t.Fatal(err)
	}
	configtest.Golden(t, filepath.Join("testdata", "schema.golden.json"), got)
	if _, err := Schema("Test", 3); err == nil {
		t.Error("Schema of a non-struct succeeded")
	}
}

// FuzzParseDecode feeds arbitrary bytes through Parse and a strict Decode:
// neither may panic, and every error must be positioned in the file.
func FuzzParseDecode(f *testing.F) {
	f.Add([]byte("kind: Test\nversion: relia/v1\nspec:\n  name: a\n  count: 3\n  ratio: 99.9%\n  timeout: 7d\n"))
	f.Add([]byte("kind: Test\nversion: relia/v1\nspec:\n  steps: [{name: a, delay: -1s}, &x {name: b}, *x]\n  <<: {name: c}\n"))
	f.Add([]byte("kind: Test\nversion: relia/v1\nspec: {labels: {a: [1]}, size: 1ZB, extra: !!binary aGk=}\n---\n- x\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Parse("fuzz.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error %q does not start with the file name", err)
			}
			return
		}
		for _, d := range docs {
			var v testDoc
			if err := d.Decode(&v); err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("decode error %v is not a *config.Error", err)
				}
				for _, line := range strings.Split(err.Error(), "\n") {
					if !strings.HasPrefix(line, "fuzz.yaml:") {
						t.Fatalf("error line %q is not positioned", line)
					}
				}
			}
			_ = d.At("spec.steps[0].name")
		}
	})
}

func TestDecodePath(t *testing.T) {
	t.Parallel()
	docs, err := Parse("p.yaml", []byte("kind: Test\nversion: relia/v1\nspec:\n  steps:\n    - name: a\n    - name: b\n      delay: soon\n"))
	if err != nil {
		t.Fatal(err)
	}
	var step testStep
	if err := docs[0].DecodePath("spec.steps[0]", &step); err != nil || step.Name != "a" {
		t.Errorf("DecodePath(steps[0]) = %+v, %v", step, err)
	}
	err = docs[0].DecodePath("spec.steps[1]", &step)
	if err == nil || err.Error() != `p.yaml:7:14: spec.steps[1].delay: duration "soon": expected a number at "soon"` {
		t.Errorf("DecodePath(steps[1]) error = %v", err)
	}
}

// An optional *Ratio or *Size describes itself like the value does, rather
// than panicking on the nil pointer.
func TestSchemaOfOptionalDescriber(t *testing.T) {
	t.Parallel()
	type optional struct {
		Spec struct {
			Ratio *Ratio `yaml:"ratio"`
			Size  *Size  `yaml:"size"`
		} `yaml:"spec"`
	}
	got, err := Schema("Test", &optional{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{mustJSON(t, Ratio(0).JSONSchema()), mustJSON(t, Size(0).JSONSchema())} {
		if !bytes.Contains(compactJSON(t, got), want) {
			t.Errorf("schema %s lacks %s", got, want)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compactJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
