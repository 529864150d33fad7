package fault

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// toxiproxyCLIModule is the stock CLI the test drives; the Makefile's
// test-deps installs the same version as .tools/bin/toxiproxy-cli.
const toxiproxyCLIModule = "github.com/Shopify/toxiproxy/v2/cmd/cli@v2.5.0"

// findToxiproxyCLI looks in PATH, the repository's .tools/bin and GOPATH's
// bin, and otherwise installs the CLI into the test's temp dir.
func findToxiproxyCLI(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("toxiproxy-cli"); err == nil {
		return p
	}
	if p, err := filepath.Abs("../.tools/bin/toxiproxy-cli"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "toxiproxy-cli")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	bin := t.TempDir()
	cmd := exec.Command("go", "install", toxiproxyCLIModule)
	cmd.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := "toxiproxy-cli is not installed and `go install " + toxiproxyCLIModule + "` failed: " + err.Error() + "\n" + string(out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return filepath.Join(bin, "cli")
}

func TestFaultToxiproxyCLI(t *testing.T) {
	t.Parallel()
	cli := findToxiproxyCLI(t)
	s, fc, _ := newTestServer(t, 1)
	up := startUpstream(t, echo)
	api := httptest.NewServer(s.Handler(HandlerOptions{}))
	defer api.Close()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, append([]string{"--host", api.URL}, args...)...)
		cmd.WaitDelay = time.Second
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("toxiproxy-cli %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	out := run("create", "--listen", "127.0.0.1:0", "--upstream", up, "shop")
	if !strings.Contains(out, "Created new proxy shop") {
		t.Fatalf("create said %q", out)
	}
	run("toxic", "add", "-t", "latency", "-a", "latency=250", "-a", "jitter=5", "shop")
	tx, err := s.Toxic("shop", "latency_downstream")
	if err != nil {
		t.Fatalf("the CLI's toxic is not on the server: %v", err)
	}
	if lt := tx.Attributes.(*LatencyToxic); lt.Latency != 250 || lt.Jitter != 5 || tx.Toxicity != 1 {
		t.Fatalf("toxic %+v %+v", tx, lt)
	}
	// The toxic stays as in Toxiproxy, with no lease to run out: well
	// past a minute (a21340e's default lease) and a day, it is there.
	fc.Advance(DefaultLeaseTTL + MaxLeaseTTL)
	if tx, err := s.Toxic("shop", "latency_downstream"); err != nil || tx.Lease != nil {
		t.Fatalf("the CLI's toxic after a day: %+v, %v", tx, err)
	}
	if out := run("inspect", "shop"); !strings.Contains(out, "latency_downstream") {
		t.Fatalf("inspect said %q", out)
	}
	if out := run("list"); !strings.Contains(out, "shop") {
		t.Fatalf("list said %q", out)
	}
	run("toxic", "update", "-n", "latency_downstream", "-a", "latency=500", "shop")
	if tx, _ := s.Toxic("shop", "latency_downstream"); tx.Attributes.(*LatencyToxic).Latency != 500 || tx.Attributes.(*LatencyToxic).Jitter != 5 {
		t.Fatalf("after update: %+v", tx.Attributes)
	}
	run("toggle", "shop")
	if p, _ := s.Proxy("shop"); p.Enabled {
		t.Fatal("toggle did not disable the proxy")
	}
	run("toggle", "shop")
	if p, _ := s.Proxy("shop"); !p.Enabled {
		t.Fatal("toggle did not enable the proxy again")
	}
	run("toxic", "remove", "-n", "latency_downstream", "shop")
	if ts, _ := s.Toxics("shop"); len(ts) != 0 {
		t.Fatalf("toxics left after remove: %+v", ts)
	}
	run("delete", "shop")
	if _, err := s.Proxy("shop"); err == nil {
		t.Fatal("proxy left after delete")
	}
}

// TestFaultToxiproxyCLIServerLease: where the server sets a default lease
// (relia fault serve --default-ttl), toxiproxy-cli's toxics get it and run
// out by themselves.
func TestFaultToxiproxyCLIServerLease(t *testing.T) {
	t.Parallel()
	cli := findToxiproxyCLI(t)
	s, fc, _ := newTestServerWith(t, Options{DefaultTTL: 30 * time.Second})
	addProxy(t, s, "shop", startUpstream(t, echo))
	api := httptest.NewServer(s.Handler(HandlerOptions{}))
	defer api.Close()
	cmd := exec.Command(cli, "--host", api.URL, "toxic", "add", "-t", "latency", "-a", "latency=250", "shop")
	cmd.WaitDelay = time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("toxiproxy-cli: %v\n%s", err, out)
	}
	tx, err := s.Toxic("shop", "latency_downstream")
	if err != nil || tx.Lease == nil || tx.Lease.TTL != "30s" {
		t.Fatalf("the CLI's toxic: %+v, %v; want the server's 30s lease", tx, err)
	}
	fc.Advance(30 * time.Second)
	waitGone(t, s, "shop", "latency_downstream")
}
