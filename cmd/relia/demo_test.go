package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoExportWritesRunnableConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "demo", "--export", dir, "--seed", "7", "--duration", "30s")
	if code != exitPass || !strings.Contains(out, "relia run "+filepath.Join(dir, "black-friday.yaml")) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	data, err := os.ReadFile(filepath.Join(dir, "black-friday.yaml"))
	if err != nil || !strings.Contains(string(data), "seed: 7") {
		t.Fatalf("exported experiment: %v\n%s", err, data)
	}
	code, out, errOut = runCLI(t, "run", filepath.Join(dir, "black-friday.yaml"), "--dry-run")
	if code != exitPass || !strings.Contains(out, "experiment black-friday: 30s in 5 phases, seed 7 (spec)") || !strings.Contains(out, "kill-catalog") {
		t.Errorf("relia run --dry-run on the export: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runCLI(t, "validate", filepath.Join(dir, "black-friday.yaml"), filepath.Join(dir, "scenario.yaml")); code != exitPass {
		t.Errorf("relia validate on the export: exit %d\n%s", code, out)
	}
}

func TestDemoRejectsATooShortRun(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, "demo", "--duration", "2s")
	if code != exitBadInput || !strings.Contains(errOut, "at least 10s") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
