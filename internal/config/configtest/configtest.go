// Package configtest holds test helpers for packages whose output is
// checked against golden files: generated configs, rules and error
// messages.
package configtest

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// Update is the -update flag of every test binary that imports this
// package: rewrite golden files instead of comparing with them.
var Update = flag.Bool("update", false, "rewrite golden files with the output of the tests")

// Golden compares got with the file at path, or writes got there under
// -update (creating directories as needed). A mismatch fails the test
// with both texts.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run the test with -update to create it): %v", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (run with -update if the change is right)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
