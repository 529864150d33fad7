package reporttest

import (
	"fmt"
	"strings"
	"testing"
)

// fakeTB records how RequireChromium ends a test instead of ending it.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Skip(args ...any)  { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any) { f.failed, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

// TestRequireChromiumWithoutBrowser: a missing browser skips the test,
// except on CI, where it fails it.
func TestRequireChromiumWithoutBrowser(t *testing.T) {
	t.Setenv("RELIA_CHROMIUM", "/nonexistent/chromium")
	tests := []struct {
		ci            string
		skip, fail    bool
		wantInMessage string
	}{
		{"", true, false, "chromium not found"},
		{"true", false, true, "required on CI"},
	}
	for _, tt := range tests {
		t.Setenv("CI", tt.ci)
		f := &fakeTB{TB: t}
		if got := RequireChromium(f); got != "" {
			t.Errorf("CI=%q: RequireChromium = %q, want none", tt.ci, got)
		}
		if f.skipped != tt.skip || f.failed != tt.fail || !strings.Contains(f.msg, tt.wantInMessage) {
			t.Errorf("CI=%q: skipped %v, failed %v (%q); want skipped %v, failed %v, mentioning %q",
				tt.ci, f.skipped, f.failed, f.msg, tt.skip, tt.fail, tt.wantInMessage)
		}
	}
}

func TestSaveArtifact(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("RELIA_ARTIFACTS", dir+"/sub")
	path := SaveArtifact(t, "x.png", []byte("data"))
	if !strings.HasPrefix(path, dir+"/sub/TestSaveArtifact-") || !strings.HasSuffix(path, "x.png") {
		t.Errorf("artifact saved at %s, want under %s/sub named after the test", path, dir)
	}
}
