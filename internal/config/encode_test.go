package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type testUnion struct {
	Left  *testStep `yaml:"left"`
	Right *testStep `yaml:"right"`
}

func (testUnion) OneOfNoun() string { return "side" }

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	in := testDoc{Spec: testSpec{
		Name: "svc", Count: 3, Ratio: 0.999, Timeout: 28 * Day, Size: 1 << 20, Weight: 0.5,
		Labels:   map[string]string{"tier": "1", "b": "true", "a": "x"},
		Steps:    []testStep{{Name: "multi\nline", Delay: 90 * time.Minute}},
		Nested:   &testStep{Name: "n"},
		Untagged: "007",
		testBase: testBase{Owner: "team"},
	}}
	out, err := Marshal("Test", in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Test\nversion: relia/v1\n", "timeout: 4w\n", "ratio: 0.999\n", "size: 1MiB\n", "tier: \"1\"\n", "name: |-\n"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("Marshal output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "enabled") || strings.Contains(string(out), "raw") {
		t.Errorf("zero-valued fields were written:\n%s", out)
	}
	docs, err := Parse("out.yaml", out)
	if err != nil {
		t.Fatal(err)
	}
	var back testDoc
	if err := docs[0].Decode(&back); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, in) {
		t.Errorf("round trip changed the value:\n%+v\n%+v\n%s", back, in, out)
	}
	if _, err := Marshal("Test", "not a struct"); err == nil {
		t.Error("Marshal of a string succeeded")
	}
}

func TestOneOf(t *testing.T) {
	t.Parallel()
	type doc struct {
		Union testUnion `yaml:"union"`
	}
	for _, tc := range []struct{ src, want string }{
		{"union: {left: {name: a}}", ""},
		{"union: {middle: {name: a}}", "u.yaml:3:9: union.middle: unknown side (valid: left, right)"},
		{"union: {lefft: {name: a}}", "u.yaml:3:9: union.lefft: unknown side (did you mean left?)"},
		{"union: {}", "u.yaml:3:8: union: missing the side: want one of left, right"},
		{"union: {left: }", "u.yaml:3:8: union: missing the side: want one of left, right"},
		{"union:", "u.yaml:3:7: union: missing the side: want one of left, right"},
		{"union: {left: {name: a}, right: {name: b}}", "u.yaml:3:8: union: takes one side, got 2 (left, right)"},
	} {
		docs, err := Parse("u.yaml", []byte("kind: T\nversion: relia/v1\n"+tc.src+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		var d doc
		err = docs[0].Decode(&d)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("%s: got error %q, want %q", tc.src, got, tc.want)
		}
	}
}
