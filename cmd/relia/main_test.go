package main

import (
	"bytes"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// runJudged is runCLI for a command whose verdict a test checks (relia
// run, which judges SLOs): a run whose load generator fell behind its
// schedule judges nothing (exit 5, inconclusive), and on a test machine
// busy with the other packages' tests that says nothing of the command,
// so such a run goes again, twice at most. The last run's exit is
// returned, inconclusive or not.
func runJudged(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	for try := 1; ; try++ {
		code, stdout, stderr = runCLI(t, args...)
		if code != exitInconclusive || try == 3 {
			return code, stdout, stderr
		}
		t.Logf("run %d of relia %s was inconclusive, so it runs again:\n%s", try, args[0], stderr)
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	code, out, _ := runCLI(t, "version")
	if code != exitPass || !strings.HasPrefix(out, "relia ") {
		t.Fatalf("version: code %d, output %q", code, out)
	}
	code, out, _ = runCLI(t, "--help")
	if code != exitPass || !strings.Contains(out, "completion") || !strings.Contains(out, "version") {
		t.Fatalf("--help: code %d, output %q", code, out)
	}
	code, out, _ = runCLI(t, "completion", "bash")
	if code != exitPass || !strings.Contains(out, "bash completion") {
		t.Fatalf("completion bash: code %d, output starts %.80q", code, out)
	}
}

func TestBadInputExitsTwo(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"no-such-command"}, {"version", "--no-such-flag"}, {"version", "extra"}} {
		if code, _, errOut := runCLI(t, args...); code != exitBadInput || !strings.Contains(errOut, "relia:") {
			t.Errorf("%v: code %d, stderr %q; want exit %d with a message", args, code, errOut, exitBadInput)
		}
	}
}
