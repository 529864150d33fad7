package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/relia-dev/relia/internal/ociimage"
)

// builtRelia is the relia binary the tests that run it as a user would
// share: built once per test process, static (CGO_ENABLED=0) as the image
// ships it, removed by TestMain.
var builtRelia struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

// reliaBinary builds relia once for the package's tests and returns its
// path.
func reliaBinary(t *testing.T) string {
	t.Helper()
	builtRelia.once.Do(func() {
		builtRelia.dir, builtRelia.err = os.MkdirTemp("", "relia-test-bin-")
		if builtRelia.err != nil {
			return
		}
		builtRelia.path = filepath.Join(builtRelia.dir, "relia")
		build := exec.Command("go", "build", "-trimpath", "-o", builtRelia.path, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		builtRelia.out, builtRelia.err = build.CombinedOutput()
	})
	if builtRelia.err != nil {
		t.Fatalf("building relia: %v\n%s", builtRelia.err, builtRelia.out)
	}
	return builtRelia.path
}

// removeTestBinaries removes what reliaBinary built.
func removeTestBinaries() {
	if builtRelia.dir != "" {
		os.RemoveAll(builtRelia.dir)
	}
}

// TestImage builds relia's image as `make image` does, reads it back
// (every digest checked), unpacks its root filesystem and runs its
// entrypoint from there: `relia version` must answer, from a static
// binary that needs nothing else in the image.
func TestImage(t *testing.T) {
	t.Parallel()
	bin := reliaBinary(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "relia-image.tar")
	// The command make image runs.
	cmd := exec.Command("go", "run", "../../internal/ociimage/cmd/ociimage", "-binary", bin, "-out", archive, "-version", "test")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ociimage: %v\n%s", err, out)
	}
	img, err := ociimage.Read(archive)
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config.Config
	if len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/relia" || c.User != "65532:65532" || c.Labels["org.opencontainers.image.version"] != "test" {
		t.Fatalf("image config: %+v", c)
	}
	root := filepath.Join(dir, "rootfs")
	if err := img.Unpack(root); err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(root, c.Entrypoint[0])
	f, err := elf.Open(entry)
	if err != nil {
		t.Fatalf("the entrypoint is no ELF binary: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the entrypoint needs a dynamic loader; on a scratch base it cannot start")
		}
	}
	f.Close()
	run := exec.Command(entry, "version")
	run.Dir = filepath.Join(root, "tmp")
	run.Env = c.Env // the image's environment, nothing of the host's
	out, err := run.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "relia ") {
		t.Fatalf("%s version: %v: %q", entry, err, out)
	}
}
