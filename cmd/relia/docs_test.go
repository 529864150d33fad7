package main

// TestDocCommands runs the commands of README.md and docs/*.md, so that
// the docs cannot rot. What a doc writer needs to know:
//
//   - Which blocks run: every fenced block opened with ```sh, ```bash,
//     ```shell or ```console (of a console block, only the lines that
//     start with "$ "). Output, and commands shown but not meant to be
//     run, go in ```text blocks; ```yaml, ```json, ```go are not run.
//
//   - How: each Markdown file is one session, as a reader with one
//     terminal would have it. Its blocks run in order, one command at a
//     time, in one bash (with job control and pipefail) whose working
//     directory is a copy of the repository: later commands see the files,
//     the `cd` and the servers of earlier ones. relia and examples/backend
//     are built once and are on PATH as `relia` and `relia-example-backend`;
//     the Go toolchain works in the copy (`go build ./examples/backend`),
//     and the test-deps (prometheus, promtool, toxiproxy-cli) are there.
//
//   - Commands: one a line; a line ending in \ continues on the next; a
//     here-document (`cat > f <<'EOF'` ... `EOF`) is part of its command;
//     "# ..." after a command is a comment.
//
//   - Servers: a command ending in & runs in the background as a job of
//     the session; when it names an address it listens on (--listen,
//     --addr, --admin-addr, -addr, --web.listen-address, a gateway's
//     config), the next command waits until it answers there, as a reader
//     would (a server named otherwise is not waited for: the page waits,
//     with curl --retry-connrefused). Later blocks use it; `kill %N` and
//     `wait` work. At the end of the page every job still running gets
//     SIGINT (Ctrl-C) and must exit within 10 s, and no process the page
//     started may be left (a server must stop what it launched). A known
//     server written without & is an error (docServerRE); any command
//     fails after docCommandTimeout.
//
//   - Addresses are written 127.0.0.1:N or localhost:N so that they move
//     (below); programs besides relia, Go and the shell (curl, jq,
//     prometheus, promtool) come from the Makefile's TEST_APT_DEPS or
//     TEST_GO_TOOLS.
//
//   - Exit codes: a command must exit 0, or with the code its comment
//     states: `relia load ... --threshold 'x<0' # exit 1`. The first
//     command that exits otherwise fails the page (file:line, its output,
//     the jobs' output) and the rest of the page does not run. A run
//     that is inconclusive (exit 5: the load generator could not keep its
//     schedule on a busy machine) passes with a log line, whatever exit
//     the comment expects of its verdict (docInconclusive).
//
//   - Keeping a command out: add it to docSkips below, matched by a
//     pattern, with the reason (a cluster, the network, minutes of
//     benchmark). Keep the list short: a command that cannot run as
//     written against what relia ships is usually a doc to fix.
//
//   - What the test changes, each logged where it applies (docRewrites):
//     every 127.0.0.1:N / localhost:N of the docs and of the text files
//     under examples/, deploy/ and docs/ moves to a free port of the page,
//     so pages run in parallel and beside other tests; `relia shop`, `relia
//     fault serve` and `relia fault` get the moved default addresses; `relia
//     load` is cut to docDuration and docMaxRate; `relia demo --export`
//     writes a short experiment; `go run ./cmd/relia` and `go run
//     ./examples/backend` use the binaries built once; /tmp/ paths move to
//     the page's own temporary folder.
//
// Run one page with `go test -run 'TestDocCommands/docs_fault$' -v
// ./cmd/relia`. docs/conventions.md ("Documentation commands") says the same
// for doc writers.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDocCommands runs every page of README.md and docs/*.md as a session
// (above). The pages run side by side, docPagesAtOnce at a time whatever
// -parallel says (they mostly wait: on servers, loads of fixed length,
// sleeps), and not beside the package's other tests, whose timing their
// load would disturb.
func TestDocCommands(t *testing.T) {
	root := filepath.Join("..", "..")
	pages := docPages(t, root)
	n := 0
	for _, p := range pages {
		for _, b := range p.blocks {
			n += len(b.commands)
		}
	}
	if len(pages) < 5 || n < 20 {
		t.Fatalf("found %d pages with %d commands in README.md and docs/*.md; the extraction is broken", len(pages), n)
	}
	env := newDocEnv(t, root)
	var wg sync.WaitGroup
	slots := make(chan struct{}, docPagesAtOnce)
	for _, p := range pages {
		slots <- struct{}{} // pages start in order
		wg.Add(1)
		go func() { // t.Run may be called from several goroutines at once
			defer wg.Done()
			defer func() { <-slots }()
			t.Run(p.name(), func(t *testing.T) { runDocPage(t, env, p) })
		}()
	}
	wg.Wait()
}

// docPagesAtOnce is how many pages run side by side.
const docPagesAtOnce = 8

// docPage is the command blocks of one Markdown file, run as one session.
type docPage struct {
	file   string // relative to the repository, "docs/load.md"
	blocks []docBlock
}

func (p docPage) name() string {
	return strings.NewReplacer("/", "_", ".md", "").Replace(p.file)
}

// docBlock is one command block of a Markdown file.
type docBlock struct {
	file     string
	line     int // the line of the opening fence
	commands []docCommand
}

// docCommand is one command of a block: continuation lines joined, a
// here-document's lines kept.
type docCommand struct {
	line       int    // in the Markdown file
	text       string // as written, without its comment and a trailing &
	comment    string
	background bool // written with a trailing &
}

var exitCommentRE = regexp.MustCompile(`\bexit (\d)\b`)

func (c docCommand) exitCode() int {
	if m := exitCommentRE.FindStringSubmatch(c.comment); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

var (
	fenceRE   = regexp.MustCompile("^```(sh|bash|console|shell)\\s*$")
	heredocRE = regexp.MustCompile(`<<(-?)\s*(?:'(\w+)'|"(\w+)"|(\w+))`)
)

// docPages reads the pages with command blocks: README.md, then
// docs/*.md.
func docPages(t *testing.T, root string) []docPage {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append([]string{filepath.Join(root, "README.md")}, files...)
	var pages []docPage
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		rel = filepath.ToSlash(rel)
		if blocks := parseDocBlocks(rel, string(data)); len(blocks) > 0 {
			pages = append(pages, docPage{file: rel, blocks: blocks})
		}
	}
	return pages
}

// parseDocBlocks finds the command blocks of one Markdown text. A console
// block's commands are its lines that start with "$ ".
func parseDocBlocks(file, text string) []docBlock {
	var blocks []docBlock
	var cur *docBlock
	console := false
	pending, pendingLine := "", 0
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		trimmed := strings.TrimSpace(lines[i])
		if cur == nil {
			if m := fenceRE.FindStringSubmatch(trimmed); m != nil {
				cur = &docBlock{file: file, line: n}
				console = m[1] == "console"
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") {
			if len(cur.commands) > 0 {
				blocks = append(blocks, *cur)
			}
			cur, pending = nil, ""
			continue
		}
		if pending == "" {
			if console {
				var ok bool
				if trimmed, ok = strings.CutPrefix(trimmed, "$ "); !ok {
					continue // output
				}
			}
			if trimmed == "" || strings.HasPrefix(trimmed, "#") {
				continue
			}
			pendingLine = n
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			pending += body + " "
			continue
		}
		c := splitComment(pendingLine, pending+trimmed)
		pending = ""
		if m := heredocRE.FindStringSubmatch(c.text); m != nil {
			// The here-document's lines, to its delimiter, belong to
			// the command as they are.
			delim := m[2] + m[3] + m[4]
			for i+1 < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i+1]), "```") {
				i++
				c.text += "\n" + lines[i]
				if strings.TrimSpace(lines[i]) == delim {
					break
				}
			}
		}
		cur.commands = append(cur.commands, c)
	}
	return blocks
}

// splitComment separates a command from its # comment and a trailing &,
// minding quotes.
func splitComment(line int, s string) docCommand {
	c := docCommand{line: line, text: s}
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (i == 0 || s[i-1] == ' ' || s[i-1] == '\t'):
			c.text, c.comment = s[:i], strings.TrimSpace(s[i+1:])
			goto done
		}
	}
done:
	c.text = strings.TrimSpace(c.text)
	if t, ok := strings.CutSuffix(c.text, "&"); ok && !strings.HasSuffix(t, "&") {
		c.text, c.background = strings.TrimSpace(t), true
	}
	return c
}

// docSkips are the commands that do not run in a test, by a pattern on
// the command as written (unless it matches except), each with its
// reason. A skipped command's effects are missing for the rest of its
// page.
var docSkips = []struct {
	pattern, except *regexp.Regexp
	reason          string
}{
	{regexp.MustCompile(`^make (test|test-deps)\b`), nil, "the test suite itself"},
	{regexp.MustCompile(`^make (bench|fuzz)`), nil, "benchmarks and fuzzing take minutes and want a quiet machine"},
	{regexp.MustCompile(`^cd bench\b`), nil, "the harnesses in bench/ take minutes and want a quiet machine (docs/benchmarks.md)"},
	{regexp.MustCompile(`^make image\b`), nil, "TestImage builds the image and runs its entrypoint"},
	{regexp.MustCompile(`^go install\b`), nil, "installs from the network"},
	{regexp.MustCompile(`^kubectl\b`), nil, "needs a Kubernetes cluster; deploy/k8s's TestKustomization checks the manifests"},
	{regexp.MustCompile(`^(go run \./cmd/relia|relia) demo\b`), regexp.MustCompile(`--export\b`),
		"a minute of load and faults; the experiment package's tests run the demo short, with and without resilience"},
}

// skipReason returns why a command does not run, or "".
func skipReason(c string) string {
	for _, s := range docSkips {
		if s.pattern.MatchString(c) && (s.except == nil || !s.except.MatchString(c)) {
			return s.reason
		}
	}
	return ""
}

// docDuration is the length every load a documented command asks for is
// cut to, and docMaxRate the rate.
const (
	docDuration = 5 * time.Second
	docMaxRate  = 100
)

// docRewrite is one visible change the test makes to a documented
// command before it runs it.
type docRewrite struct {
	what  string
	apply func(cmd string, s *docSession) string
}

// docDefaultPorts are the ports relia's commands use when no flag names
// one (conventions.md): relia shop and its admin API, the fault server,
// examples/backend, the load's metrics, Prometheus. They move with the
// ports the docs write.
var docDefaultPorts = []int{8080, 9901, 9001, 9002, 9003, 8474, 9464, 9090}

var (
	goRunReliaRE   = regexp.MustCompile(`\bgo run \./cmd/relia\b`)
	goRunBackendRE = regexp.MustCompile(`\bgo run \./examples/backend\b`)
	durationFlagRE = regexp.MustCompile(`--duration[ =](\S+)`)
	rateFlagRE     = regexp.MustCompile(`--rate[ =](\S+)`)
	demoExportRE   = regexp.MustCompile(`^relia demo .*--export`)
	shopRE         = regexp.MustCompile(`^relia shop\b`)
	faultServeRE   = regexp.MustCompile(`^relia fault serve\b`)
	faultClientRE  = regexp.MustCompile(`^relia fault \w`)
	loadRE         = regexp.MustCompile(`^relia load `)
	loadNotRunRE   = regexp.MustCompile(`^relia load (merge|validate|schema)\b`)
	tmpPathRE      = regexp.MustCompile(`(^|[\s='"])/tmp/`)
	hostPortRE     = regexp.MustCompile(`\b(127\.0\.0\.1|localhost|0\.0\.0\.0):(\d+)\b`)
)

// docRewrites are applied in order to every command.
var docRewrites = []docRewrite{
	{"go run ./cmd/relia -> the relia binary built once", func(c string, _ *docSession) string {
		return goRunReliaRE.ReplaceAllString(c, "relia")
	}},
	{"go run ./examples/backend -> its binary built once", func(c string, _ *docSession) string {
		return goRunBackendRE.ReplaceAllString(c, "relia-example-backend")
	}},
	{"documented ports -> free loopback ports of the page", func(c string, s *docSession) string {
		return rewritePorts(c, s.ports)
	}},
	{"/tmp/ -> the page's own temporary folder", func(c string, s *docSession) string {
		return tmpPathRE.ReplaceAllString(c, "${1}"+s.tmp+"/")
	}},
	{fmt.Sprintf("relia load: --duration cut to %s, --rate to %d", docDuration, docMaxRate), func(c string, _ *docSession) string {
		if !isLoadRun(c) {
			return c
		}
		c = durationFlagRE.ReplaceAllStringFunc(c, func(m string) string {
			d, err := time.ParseDuration(strings.TrimLeft(m[len("--duration"):], " ="))
			if err != nil || d <= docDuration {
				return m
			}
			return "--duration " + docDuration.String()
		})
		c = rateFlagRE.ReplaceAllStringFunc(c, func(m string) string {
			r, err := strconv.ParseFloat(strings.TrimLeft(m[len("--rate"):], " ="), 64)
			if err != nil || r <= docMaxRate {
				return m
			}
			return "--rate " + strconv.Itoa(docMaxRate)
		})
		if !strings.Contains(c, "--duration") && !strings.Contains(c, "://") {
			c += " --duration " + docDuration.String() // a scenario file's own profile, shorter
		}
		return c
	}},
	{"relia demo --export: the experiment shortened to 12s at 5 req/s, as experiment's TestDemo runs it", func(c string, _ *docSession) string {
		if !demoExportRE.MatchString(c) {
			return c
		}
		if !strings.Contains(c, "--duration") {
			c += " --duration 12s"
		}
		if !strings.Contains(c, "--rate") {
			c += " --rate 5"
		}
		return c
	}},
	{"relia shop, relia fault: their default addresses -> the page's ports", func(c string, s *docSession) string {
		switch {
		case shopRE.MatchString(c):
			if !strings.Contains(c, "--addr") {
				c += fmt.Sprintf(" --addr 127.0.0.1:%d", s.ports[8080])
			}
			if !strings.Contains(c, "--admin-addr") {
				c += fmt.Sprintf(" --admin-addr 127.0.0.1:%d", s.ports[9901])
			}
		case faultServeRE.MatchString(c):
			if !strings.Contains(c, "--listen") {
				c += fmt.Sprintf(" --listen 127.0.0.1:%d", s.ports[8474])
			}
		case faultClientRE.MatchString(c) && !strings.Contains(c, "--server"):
			c += fmt.Sprintf(" --server http://127.0.0.1:%d", s.ports[8474])
		}
		return c
	}},
}

// isLoadRun reports whether a command runs load (not merge, validate or
// schema).
func isLoadRun(c string) bool {
	return loadRE.MatchString(c) && !loadNotRunRE.MatchString(c)
}

// rewritePorts moves every port of ports in s to its free one.
func rewritePorts(s string, ports map[int]int) string {
	return hostPortRE.ReplaceAllStringFunc(s, func(m string) string {
		host, p, _ := strings.Cut(m, ":")
		n, _ := strconv.Atoi(p)
		if free, ok := ports[n]; ok {
			return host + ":" + strconv.Itoa(free)
		}
		return m
	})
}

// docInconclusive reports whether a command's exit says that the load
// generator could not keep its own schedule, so the run judged nothing:
// exit 5 and nothing else (conventions.md). A busy test machine makes
// arrivals late; that says nothing about the documented command, which
// ran, whatever exit its comment expects of a verdict.
func docInconclusive(code int) bool {
	return code == exitInconclusive
}

// TestDocBlocksParse pins the extraction: continuations, comments,
// backgrounding, here-documents, console prompts and expected exit codes;
// and the rewrites, skips and the inconclusive rule.
func TestDocBlocksParse(t *testing.T) {
	t.Parallel()
	md := "text\n```sh\nrelia shop &   # the target\n# a comment\nrelia load x.yaml \\\n  --duration 1m   # exit 1\necho '#not a comment' # but this is\n" +
		"cat > p.yml <<'EOF'\na: 1   # kept\n\n  b: [127.0.0.1:9901]\nEOF\nkill %1\n```\n" +
		"```text\nrelia not-run\n```\n```console\n$ relia version\nrelia dev\n```\n"
	blocks := parseDocBlocks("f.md", md)
	if len(blocks) != 2 {
		t.Fatalf("%d blocks, want 2: %+v", len(blocks), blocks)
	}
	got := blocks[0].commands
	want := []docCommand{
		{line: 3, text: "relia shop", comment: "the target", background: true},
		{line: 5, text: "relia load x.yaml  --duration 1m", comment: "exit 1"},
		{line: 7, text: "echo '#not a comment'", comment: "but this is"},
		{line: 8, text: "cat > p.yml <<'EOF'\na: 1   # kept\n\n  b: [127.0.0.1:9901]\nEOF"},
		{line: 13, text: "kill %1"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n got %+v\nwant %+v", got, want)
	}
	if got[1].exitCode() != 1 || got[0].exitCode() != 0 {
		t.Errorf("exit codes %d, %d; want 1, 0", got[1].exitCode(), got[0].exitCode())
	}
	if c := blocks[1].commands; len(c) != 1 || c[0].text != "relia version" || c[0].line != 19 || blocks[1].line != 18 {
		t.Errorf("console block: %+v", blocks[1])
	}

	s := &docSession{ports: map[int]int{8080: 40001, 8474: 40002, 9901: 40003}, tmp: "/w/tmp"}
	for in, want := range map[string]string{
		"go run ./cmd/relia load examples/scenario.yaml --rate 1000 --out r.json": "relia load examples/scenario.yaml --rate 100 --out r.json --duration 5s",
		"go run ./cmd/relia shop":                          "relia shop --addr 127.0.0.1:40001 --admin-addr 127.0.0.1:40003",
		"relia fault list":                                 "relia fault list --server http://127.0.0.1:40002",
		"relia fault add x --server http://localhost:8474": "relia fault add x --server http://localhost:40002",
		"relia fault serve --listen 127.0.0.1:8474":        "relia fault serve --listen 127.0.0.1:40002",
		"relia fault process add f --path /tmp/fill":       "relia fault process add f --path /w/tmp/fill --server http://127.0.0.1:40002",
		"cat > p.yml <<'EOF'\n  - 127.0.0.1:9901\nEOF":     "cat > p.yml <<'EOF'\n  - 127.0.0.1:40003\nEOF",
		"curl localhost:8080/x 127.0.0.1:80801 0.0.0.0:0":  "curl localhost:40001/x 127.0.0.1:80801 0.0.0.0:0",
		"relia demo --export bf":                           "relia demo --export bf --duration 12s --rate 5",
	} {
		if got := s.rewrite("f.md:1", in); got != want {
			t.Errorf("rewrite(%q)\n = %q\nwant %q", in, got, want)
		}
	}

	for code, want := range map[int]bool{exitInconclusive: true, exitFailed: false, exitPass: false, exitRuntime: false} {
		if docInconclusive(code) != want {
			t.Errorf("docInconclusive(%d) = %v", code, !want)
		}
	}
	for c, skip := range map[string]bool{"make test": true, "relia demo": true, "go run ./cmd/relia demo": true, "relia demo --no-resilience": true,
		"relia demo --export bf": false, "relia load x.yaml": false, "cd bench && go run ./capacity -step 10s": true} {
		if (skipReason(c) != "") != skip {
			t.Errorf("%q: skip %v, want %v", c, !skip, skip)
		}
	}
}
