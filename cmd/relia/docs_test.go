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
//     the `cd` and the servers of earlier ones. relia is on PATH, and so
//     are the Go toolchain and the test-deps (prometheus, promtool,
//     toxiproxy-cli). `go run ./PKG` runs PKG's program, built once for
//     every page from the repository (docBinaries).
//
//   - Commands: one a line; a line ending in \ continues on the next; a
//     here-document (`cat > f <<'EOF'` ... `EOF`) is part of its command;
//     "# ..." after a command is a comment.
//
//   - Servers: a command ending in & runs in the background as a job of
//     the session; the next command waits until it answers on every
//     address it names (docListenFlags, a server's config file). A server
//     named otherwise is not waited for: the page waits, with curl
//     --retry-connrefused. A server started where an earlier job of the
//     page still listens fails the page. Later blocks use it; `kill %N` and
//     `wait` work. At the end of the page every job still running gets
//     SIGINT (Ctrl-C) and must exit within 10 s, and no process the page
//     started may be left (a server must stop what it launched). The
//     servers relia ships are declared in docServers (with the default
//     addresses the test writes in for them, moved), the clients of a
//     default address in docClients; a known server written without & is
//     an error; any command fails after docCommandTimeout.
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
//     the comment expects of its verdict (docInconclusive). A harness of
//     bench/ that measured and missed its speed bar (exit 1) passes with a
//     log line (docHarnesses).
//
//   - Keeping a command out: add it to docSkips below, matched by a
//     pattern, with the reason (a cluster, the network, the whole
//     benchmark comparison). Keep the list short: a command that cannot
//     run as written against what relia ships is usually a doc to fix.
//
//   - What the test changes, each logged where it applies (docRewrites):
//     every 127.0.0.1:N / localhost:N of the docs and of the text files
//     under examples/, deploy/ and docs/ moves to a free port of the page,
//     so pages run side by side and beside other tests; docServers and
//     docClients get their moved default addresses; `relia load` is cut to
//     docDuration and docMaxRate; `relia demo` runs (or writes) a short
//     experiment; `go run ./PKG` runs the program built once; the
//     harnesses of bench/ get the short flags of docHarnesses; /tmp/ paths
//     move to the page's own temporary folder.
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

	"github.com/relia-dev/relia/gateway"
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
	startDocBuilds(env, pages)
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
	env.binaries.wait()
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
	{regexp.MustCompile(`^(cd bench && )?(taskset -c [\d,-]+ )?go test -run='\^\$' -bench=|^cd bench && go run \./(fault|gateway|load|grpc|ai|llm|calls) `), nil,
		"a comparison with peers (nginx, haproxy, Toxiproxy, wrk, k6, ghz, Portkey: make bench-deps) that takes minutes and wants a quiet machine"},
	{regexp.MustCompile(`^cd bench && go run \./ai/sweepwait `), nil,
		"times the Go scheduler's waits on this machine's two cores for a minute; its figures want a quiet machine"},
	{regexp.MustCompile(`^make image\b`), nil, "TestImage builds the image and runs its entrypoint"},
	{regexp.MustCompile(`^go install\b`), nil, "installs from the network"},
	{regexp.MustCompile(`^kubectl\b`), nil, "needs a Kubernetes cluster; deploy/k8s's TestKustomization checks the manifests"},
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

// docServers are the servers the docs start, as the test knows them. A
// server runs until interrupted, so a page starts it with a trailing &
// (one written without fails at once rather than after docCommandTimeout).
// Started, the page goes on once it listens on every address its command
// names (docListenFlags, and the addresses of its config file); a server
// that would listen on a default address the command does not write gets
// it written, moved to the page's port, so that pages side by side do not
// collide. A new server that relia or examples/ ships gets an entry here.
var docServers = []docServer{
	{cmd: regexp.MustCompile(`^relia shop\b`), defaults: []docAddr{{"--addr", 8080}, {"--admin-addr", 9901}}},
	{cmd: regexp.MustCompile(`^relia gateway\b`), except: regexp.MustCompile(`^relia gateway (validate|schema)\b`), config: gatewayAddrs},
	{cmd: regexp.MustCompile(`^relia fault serve\b`), defaults: []docAddr{{"--listen", 8474}}},
	{cmd: regexp.MustCompile(`^(relia-examples-backend|bin/backend)\b`), defaults: []docAddr{{"-addr", 9001}}},
	{cmd: regexp.MustCompile(`^relia-examples-grpcserver\b`), defaults: []docAddr{{"-addr", 50051}}},
	{cmd: regexp.MustCompile(`^relia kafka fake\b`), defaults: []docAddr{{"--addr", 9092}}},
	{cmd: regexp.MustCompile(`^prometheus\b`), defaults: []docAddr{{"--web.listen-address", 9090}}},
	{cmd: regexp.MustCompile(`^relia ai mock\b`), defaults: []docAddr{{"--listen", 9700}}},
	{cmd: regexp.MustCompile(`^relia ai serve\b`), defaults: []docAddr{{"--listen", 8090}, {"--admin-addr", 9902}}},
}

// docClients are the commands that talk to a server's default address
// unless a flag names one; the test names the page's.
var docClients = []struct {
	cmd, except *regexp.Regexp
	flag        string
	url         string // with %d for the port
	port        int
}{
	{regexp.MustCompile(`^relia fault \w`), regexp.MustCompile(`^relia fault serve\b`), "--server", "http://127.0.0.1:%d", 8474},
}

// docListenFlags are the flags that name where a server listens, in any
// command: a background command that writes one is waited for there.
var docListenFlags = []string{"--listen", "--addr", "--admin-addr", "-addr", "--web.listen-address"}

// docServer is one server command (docServers).
type docServer struct {
	cmd, except *regexp.Regexp
	defaults    []docAddr
	// config returns the addresses a server's config file (--config)
	// makes it listen on.
	config func(path string) ([]string, error)
}

// docAddr is a flag naming an address, with its documented default port.
type docAddr struct {
	flag string
	port int
}

// serverOf returns the server a command starts, or nil.
func serverOf(cmd string) *docServer {
	for i, sv := range docServers {
		if sv.cmd.MatchString(cmd) && (sv.except == nil || !sv.except.MatchString(cmd)) {
			return &docServers[i]
		}
	}
	return nil
}

// gatewayAddrs returns where a gateway config makes it listen.
func gatewayAddrs(path string) ([]string, error) {
	cfg, err := gateway.LoadFile(path)
	if err != nil {
		return nil, err
	}
	addrs := []string{cfg.Spec.Admin.Address}
	for _, l := range cfg.Spec.Listeners {
		addrs = append(addrs, l.Address)
	}
	return addrs, nil
}

// docDefaultPorts are the default ports of docServers and docClients,
// which move with the ports the docs write.
func docDefaultPorts() []int {
	var ports []int
	for _, sv := range docServers {
		for _, a := range sv.defaults {
			ports = append(ports, a.port)
		}
	}
	for _, c := range docClients {
		ports = append(ports, c.port)
	}
	return ports
}

// hasFlag reports whether a command writes a flag.
func hasFlag(cmd, flag string) bool {
	return regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(flag) + `([ =]|$)`).MatchString(cmd)
}

// docHarnesses are the programs of bench/ that the docs run. In a test a
// harness runs with the short flags given here (each replaces the value the
// doc writes, or is added), so that it measures for seconds rather than
// minutes. A harness judges speed, which a machine shared with the rest of
// the suite cannot give it: its exit 1 passes, logged, when its output
// shows that it measured and reached its verdict (ran); anything else
// fails the page. A bench/ program missing here fails the page that runs it.
var docHarnesses = []docHarness{
	{pkg: "bench/capacity", flags: []string{"-step", "2s", "-concurrency", "1,2,4,8,16", "-leave-out", "4"},
		ran: regexp.MustCompile(`(?m)^USL over all steps: `)},
	{pkg: "bench/gateway/edge", flags: []string{"-connections", "200", "-relia", "relia"},
		ran: regexp.MustCompile(`(?m)^gateway RSS: `)},
}

// docHarness is one program of bench/ as the test runs it.
type docHarness struct {
	pkg   string   // its package directory, "bench/capacity"
	flags []string // flag, value, flag, value ...
	ran   *regexp.Regexp
}

// argsRE matches the program of a harness and its arguments, up to
// the next control operator.
func (h docHarness) argsRE() *regexp.Regexp {
	return regexp.MustCompile(`(^|[\s;&|(])` + regexp.QuoteMeta(docBinaryName(h.pkg)) + `((?:[ \t]+[^;&|()\n]*)?)`)
}

// harnessIn returns the harness a command runs, or nil.
func harnessIn(cmd string) *docHarness {
	for i := range docHarnesses {
		if docHarnesses[i].argsRE().MatchString(cmd) {
			return &docHarnesses[i]
		}
	}
	return nil
}

// setFlag gives a flag a value in args: it replaces the value written
// (`-step 10s`, `-step=10s`) or adds the flag.
func setFlag(args, flag, value string) string {
	re := regexp.MustCompile(`(^|\s)` + regexp.QuoteMeta(flag) + `(?:=|\s+)\S+`)
	if re.MatchString(args) {
		return re.ReplaceAllLiteralString(args, " "+flag+" "+value)
	}
	trimmed := strings.TrimRight(args, " \t")
	return trimmed + " " + flag + " " + value + args[len(trimmed):]
}

// goRun is a `go run ./PKG` in a command.
type goRun struct {
	start, end int    // of "go run ./PKG" in the command
	pkg        string // the package's directory, relative to the repository
}

var (
	goRunRE   = regexp.MustCompile(`(?:^|&&|;|\||\()\s*(go run (\.\.?/[\w./-]*))`)
	controlRE = regexp.MustCompile(`&&|\|\||;|\|`)
	cdRE      = regexp.MustCompile(`^cd\s+([^\s;&|]+)$`)
)

// goRuns finds the packages of the repository a command `go run`s, given
// the directory it starts in (relative to the repository): a `cd DIR &&`
// before a `go run` moves it.
func goRuns(cmd, cwd string) []goRun {
	var runs []goRun
	for _, m := range goRunRE.FindAllStringSubmatchIndex(cmd, -1) {
		dir := cwd
		for _, seg := range controlRE.Split(cmd[:m[2]], -1) {
			if cd := cdRE.FindStringSubmatch(strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(seg), "("))); cd != nil {
				dir = filepath.Join(dir, cd[1])
			}
		}
		pkg := filepath.ToSlash(filepath.Join(dir, cmd[m[4]:m[5]]))
		if pkg == ".." || strings.HasPrefix(pkg, "../") || filepath.IsAbs(pkg) {
			continue // outside the repository
		}
		runs = append(runs, goRun{start: m[2], end: m[3], pkg: pkg})
	}
	return runs
}

// startDocBuilds starts building, in the background, every program the
// pages `go run` (followed through their `cd DIR` commands), so that a
// page seldom waits for one.
func startDocBuilds(e *docEnv, pages []docPage) {
	for _, p := range pages {
		cwd := "."
		for _, b := range p.blocks {
			for _, c := range b.commands {
				if skipReason(c.text) != "" {
					continue
				}
				if m := cdRE.FindStringSubmatch(c.text); m != nil {
					cwd = filepath.Join(cwd, m[1])
				}
				for _, r := range goRuns(c.text, cwd) {
					e.binaries.start(r.pkg)
				}
			}
		}
	}
}

var (
	durationFlagRE = regexp.MustCompile(`--duration[ =](\S+)`)
	rateFlagRE     = regexp.MustCompile(`--rate[ =](\S+)`)
	demoRE         = regexp.MustCompile(`^relia demo\b`)
	loadRE         = regexp.MustCompile(`^relia load `)
	loadNotRunRE   = regexp.MustCompile(`^relia load (merge|validate|schema|llm merge)\b`)
	tmpPathRE      = regexp.MustCompile(`(^|[\s='"])/tmp/`)
	hostPortRE     = regexp.MustCompile(`\b(127\.0\.0\.1|localhost|0\.0\.0\.0):(\d+)\b`)
)

// docRewrites are applied in order to every command.
var docRewrites = []docRewrite{
	{"go run ./PKG -> PKG's program built once (cmd/relia is relia, examples/backend relia-examples-backend)", func(c string, s *docSession) string {
		if s.binary == nil {
			return c
		}
		cwd, err := filepath.Rel(s.dir, s.cwd)
		if err != nil {
			return c
		}
		runs := goRuns(c, cwd)
		for i := len(runs) - 1; i >= 0; i-- {
			r := runs[i]
			if strings.HasPrefix(r.pkg, "bench/") && !slices.ContainsFunc(docHarnesses, func(h docHarness) bool { return h.pkg == r.pkg }) {
				s.t.Fatalf("%q runs the harness ./%s, which docHarnesses (cmd/relia/docs_test.go) does not give short flags", c, r.pkg)
			}
			name, err := s.binary(r.pkg)
			if err != nil {
				s.t.Fatalf("%q: %v", c, err)
			}
			c = c[:r.start] + name + c[r.end:]
		}
		return c
	}},
	{"bench/ harnesses: the short flags of docHarnesses", func(c string, _ *docSession) string {
		for _, h := range docHarnesses {
			c = h.argsRE().ReplaceAllStringFunc(c, func(m string) string {
				sub := h.argsRE().FindStringSubmatch(m)
				args := sub[2]
				for i := 0; i+1 < len(h.flags); i += 2 {
					args = setFlag(args, h.flags[i], h.flags[i+1])
				}
				return sub[1] + docBinaryName(h.pkg) + args
			})
		}
		return c
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
	{"relia demo: the experiment shortened to 12s at 2 users/s, as experiment's TestDemo runs it", func(c string, _ *docSession) string {
		if !demoRE.MatchString(c) {
			return c
		}
		if !strings.Contains(c, "--duration") {
			c += " --duration 12s"
		}
		if !strings.Contains(c, "--rate") {
			c += " --rate 2"
		}
		return c
	}},
	{"docServers, docClients: their default addresses -> the page's ports", func(c string, s *docSession) string {
		if sv := serverOf(c); sv != nil {
			for _, a := range sv.defaults {
				if !hasFlag(c, a.flag) {
					c += fmt.Sprintf(" %s 127.0.0.1:%d", a.flag, s.ports[a.port])
				}
			}
		}
		for _, cl := range docClients {
			if cl.cmd.MatchString(c) && !cl.except.MatchString(c) && !hasFlag(c, cl.flag) {
				c += " " + cl.flag + " " + fmt.Sprintf(cl.url, s.ports[cl.port])
			}
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

	s := &docSession{ports: map[int]int{8080: 40001, 8474: 40002, 9901: 40003}, tmp: "/w/tmp", dir: "/w/relia", cwd: "/w/relia",
		binary: func(pkg string) (string, error) { return docBinaryName(pkg), nil }}
	for in, want := range map[string]string{
		"go run ./cmd/relia load examples/scenario.yaml --rate 1000 --out r.json": "relia load examples/scenario.yaml --rate 100 --out r.json --duration 5s",
		"go run ./cmd/relia shop":                          "relia shop --addr 127.0.0.1:40001 --admin-addr 127.0.0.1:40003",
		"relia fault list":                                 "relia fault list --server http://127.0.0.1:40002",
		"relia fault add x --server http://localhost:8474": "relia fault add x --server http://localhost:40002",
		"relia fault serve --listen 127.0.0.1:8474":        "relia fault serve --listen 127.0.0.1:40002",
		"relia fault process add f --path /tmp/fill":       "relia fault process add f --path /w/tmp/fill --server http://127.0.0.1:40002",
		"cat > p.yml <<'EOF'\n  - 127.0.0.1:9901\nEOF":     "cat > p.yml <<'EOF'\n  - 127.0.0.1:40003\nEOF",
		"curl localhost:8080/x 127.0.0.1:80801 0.0.0.0:0":  "curl localhost:40001/x 127.0.0.1:80801 0.0.0.0:0",
		"relia demo --export bf":                           "relia demo --export bf --duration 12s --rate 2",
		"go run ./cmd/relia demo --rate 2":                 "relia demo --rate 2 --duration 12s",
		"cd docs && cd .. && go run ./examples/backend -addr 127.0.0.1:8080 && go run ./cmd/relia version": "cd docs && cd .. && relia-examples-backend -addr 127.0.0.1:40001 && relia version",
		"cd docs && go run ../cmd/relia version":                                                           "cd docs && relia version",
		"cd bench && go run ./capacity -step 10s":                                                          "cd bench && relia-bench-capacity -step 2s -concurrency 1,2,4,8,16 -leave-out 4",
		"(cd bench; go run ./capacity -leave-out=12 -work 50) | tee c.txt":                                 "(cd bench; relia-bench-capacity -leave-out 4 -work 50 -step 2s -concurrency 1,2,4,8,16) | tee c.txt",
		"go run ../outside": "go run ../outside",
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
	for c, skip := range map[string]bool{"make test": true, "relia demo": false, "go run ./cmd/relia demo": false, "make bench-load": true,
		"relia demo --export bf": false, "relia load x.yaml": false, "cd bench && go run ./capacity -step 10s": false,
		"cd bench && go run ./ai/sweepwait -rounds 4 -duration 5s": true, "cd bench && go run ./gateway/edge -connections 1000": false} {
		if (skipReason(c) != "") != skip {
			t.Errorf("%q: skip %v, want %v", c, !skip, skip)
		}
	}
}
