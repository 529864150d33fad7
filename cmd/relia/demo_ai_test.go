package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDemoAIExportWritesARunnableExperiment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "ai-assistant.yaml")
	code, out, errOut := runCLI(t, "demo", "ai", "--export", dir, "--seed", "7", "--duration", "30s", "--no-resilience")
	if code != exitPass || !strings.Contains(out, "relia run "+file) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), "seed: 7") || !strings.Contains(string(data), "disableResilience: true") {
		t.Fatalf("exported experiment: %v\n%s", err, data)
	}
	code, out, errOut = runCLI(t, "run", file, "--dry-run")
	for _, want := range []string{
		"experiment ai-assistant: 28s in 6 phases, seed 7 (spec)",
		"ai stack (assistant, relia's AI gateway, providers alpha and beta), resilience off",
		"latency <= 500ms of llm_time_to_first_token",
		"provider/alpha  provider status 429 Retry-After 2s on 50% of requests",
		"provider/alpha  provider slow_first_token +1s on 100% of requests",
		"provider/alpha  provider stall after 3 tokens on 100% of requests",
		"llm streams to /ask as acme, globex, initech",
		"provider alpha: seed = ",
	} {
		if code != exitPass || !strings.Contains(out, want) {
			t.Errorf("relia run --dry-run on the export: exit %d, want %q in\n%s%s", code, want, out, errOut)
		}
	}
	if code, out, _ := runCLI(t, "validate", file); code != exitPass {
		t.Errorf("relia validate on the export: exit %d\n%s", code, out)
	}
}

func TestDemoAIRejectsATooShortRun(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI(t, "demo", "ai", "--duration", "2s")
	if code != exitBadInput || !strings.Contains(errOut, "at least 10s") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}
