package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestSchemasArePublished: docs/schema/ holds what relia schema prints,
// for every kind and for all of them together, and relia run schema
// prints the experiment's as the other commands print theirs.
func TestSchemasArePublished(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"", "gateway", "scenario", "slo", "experiment", "aigateway", "models", "prompt"} {
		file := "relia.json"
		if kind != "" {
			file = kind + ".json"
		}
		want, err := os.ReadFile(filepath.Join("..", "..", "docs", "schema", file))
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"schema"}
		if kind != "" {
			args = append(args, kind)
		}
		code, out, errOut := runCLI(t, args...)
		if code != exitPass || out != string(want) {
			t.Errorf("relia %s: exit %d %s; docs/schema/%s is stale: go run ./cmd/relia %s > docs/schema/%s",
				strings.Join(args, " "), code, errOut, file, strings.Join(args, " "), file)
		}
	}
	want, _ := os.ReadFile(filepath.Join("..", "..", "docs", "schema", "experiment.json"))
	if code, out, errOut := runCLI(t, "run", "schema"); code != exitPass || out != string(want) {
		t.Errorf("relia run schema: exit %d, stderr %q, output differs from docs/schema/experiment.json", code, errOut)
	}
	if code, _, errOut := runCLI(t, "schema", "nosuchkind"); code != exitBadInput || !strings.Contains(errOut, "Gateway") {
		t.Errorf("relia schema nosuchkind: exit %d, %q; want 2 listing the kinds", code, errOut)
	}
}

// TestSchemasDescribeEveryField: every property of every kind's schema
// has a description and every schema an $id; the combined schema selects
// each kind's by kind:.
func TestSchemasDescribeEveryField(t *testing.T) {
	t.Parallel()
	data, err := allKindsSchema()
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(data, &all); err != nil {
		t.Fatal(err)
	}
	if all["$id"] == nil || len(all["allOf"].([]any)) != len(schemas) {
		t.Fatalf("combined schema: $id %v, %d branches for %d kinds", all["$id"], len(all["allOf"].([]any)), len(schemas))
	}
	for kind := range schemas {
		raw, err := schemaOf(kind)
		if err != nil {
			t.Fatal(err)
		}
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		if id, _ := s["$id"].(string); !strings.HasSuffix(id, "/"+strings.ToLower(kind)+".json") {
			t.Errorf("%s: $id %q", kind, id)
		}
		var missing []string
		walkProps(s, kind, func(path string, p map[string]any) {
			if _, ok := p["description"]; !ok && !strings.HasSuffix(path, ".kind") && !strings.HasSuffix(path, ".version") {
				missing = append(missing, path)
			}
		})
		if len(missing) > 0 {
			t.Errorf("%s: %d properties without a description (add a doc comment to the field and run go generate ./internal/config): %s",
				kind, len(missing), strings.Join(missing, ", "))
		}
	}
}

// walkProps calls f for every property of every object in a schema.
func walkProps(s any, path string, f func(string, map[string]any)) {
	switch s := s.(type) {
	case map[string]any:
		if props, ok := s["properties"].(map[string]any); ok {
			for name, p := range props {
				if pm, ok := p.(map[string]any); ok {
					f(path+"."+name, pm)
					walkProps(pm, path+"."+name, f)
				}
			}
		}
		for k, v := range s {
			if k != "properties" {
				walkProps(v, path, f)
			}
		}
	case []any:
		for _, v := range s {
			walkProps(v, path, f)
		}
	}
}

// yaml11Bools are the plain scalars YAML 1.1 parsers (PyYAML, many
// editors) read as booleans, where YAML 1.2 reads strings.
var yaml11Bools = []string{"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
	"on", "On", "ON", "off", "Off", "OFF"}

// TestKeysReadTheSameInYAML11: no key of any kind is one YAML 1.1 reads
// as a boolean (an old name kept as an alias, such as retry.on, is
// described as such and not used), and no plain key or value in a
// shipped example is one either.
func TestKeysReadTheSameInYAML11(t *testing.T) {
	t.Parallel()
	for kind := range schemas {
		raw, _ := schemaOf(kind)
		var s map[string]any
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		walkProps(s, kind, func(path string, p map[string]any) {
			name := path[strings.LastIndex(path, ".")+1:]
			desc, _ := p["description"].(string)
			if slices.Contains(yaml11Bools, name) && !strings.HasPrefix(desc, "Another name for") {
				t.Errorf("%s: the key %q is a boolean to YAML 1.1 parsers; rename it and keep it as an alias (config:\"alias=%s\")", path, name, name)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	k8s, _ := filepath.Glob(filepath.Join("..", "..", "deploy", "k8s", "*.yaml"))
	for _, f := range append(files, k8s...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		for {
			var doc yaml.Node
			if err := dec.Decode(&doc); err != nil {
				break
			}
			walkScalars(&doc, func(n *yaml.Node) {
				if n.Style == 0 && slices.Contains(yaml11Bools, n.Value) {
					t.Errorf("%s:%d:%d: %q is a boolean to YAML 1.1 parsers; quote it or use another key", f, n.Line, n.Column, n.Value)
				}
			})
		}
	}
}

func walkScalars(n *yaml.Node, f func(*yaml.Node)) {
	if n.Kind == yaml.ScalarNode {
		f(n)
	}
	for _, c := range n.Content {
		walkScalars(c, f)
	}
}
