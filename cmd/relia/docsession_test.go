package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// docCommandTimeout bounds one documented command; docStopTimeout is how
// long a background job has to exit after SIGINT at the end of its page.
const (
	docCommandTimeout = 3 * time.Minute
	docStopTimeout    = 10 * time.Second
	docListenTimeout  = time.Minute
)

// docSessionVar marks every process a page starts (inherited through the
// environment), so that what a page leaves running is found at its end.
const docSessionVar = "RELIA_DOCTEST_SESSION"

// docT is what a page needs of its test (TestDocSession records it).
type docT interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Fatal(args ...any)
	TempDir() string
	Cleanup(func())
}

// docEnv is what every page starts from: the binaries, the repository's
// files, the ports the docs name and the environment.
type docEnv struct {
	root     string   // the repository, absolute
	bin      string   // relia and the programs the pages `go run`, on the pages' PATH
	files    []string // the repository's files to copy, relative
	ports    []int    // every port the docs and the files under examples/, deploy/ and docs/ name
	env      []string
	binaries *docBinaries
}

// newDocEnv builds relia (once for the package's tests) and
// examples/backend, lists the repository's files and the ports they name,
// and makes the environment the pages share.
func newDocEnv(t *testing.T, root string) *docEnv {
	root, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	e := &docEnv{root: root, bin: t.TempDir()}
	if err := os.Symlink(reliaBinary(t), filepath.Join(e.bin, "relia")); err != nil {
		t.Fatal(err)
	}
	e.binaries = newDocBinaries(root, e.bin)
	e.files = repoFiles(t, root)
	e.ports = documentedPorts(t, root, e.files)
	e.env = docBaseEnv(t, root, e.bin)
	return e
}

// docBinaries builds the programs the pages `go run`, each once, from the
// repository rather than a page's copy: built with -trimpath, a program
// shares the Go build cache with relia's own binary and with every earlier
// run, where a build in a fresh copy would compile its packages again.
type docBinaries struct {
	root, bin string
	mu        sync.Mutex
	builds    map[string]*docBuild // by package directory, relative to root
}

// docBuild is one program being built or built.
type docBuild struct {
	done chan struct{}
	name string // on the pages' PATH
	err  error
}

func newDocBinaries(root, bin string) *docBinaries {
	built := &docBuild{done: make(chan struct{}), name: "relia"} // reliaBinary, linked into bin
	close(built.done)
	return &docBinaries{root: root, bin: bin, builds: map[string]*docBuild{"cmd/relia": built}}
}

// docBinaryName is the name a package's program has on the pages' PATH:
// cmd/X is X, any other directory its path with dashes after "relia-"
// (bench/capacity is relia-bench-capacity).
func docBinaryName(pkg string) string {
	if name, ok := strings.CutPrefix(pkg, "cmd/"); ok && !strings.Contains(name, "/") {
		return name
	}
	return "relia-" + strings.ReplaceAll(pkg, "/", "-")
}

// start builds pkg (a directory relative to the repository) in the
// background unless it is built or being built.
func (b *docBinaries) start(pkg string) *docBuild {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d, ok := b.builds[pkg]; ok {
		return d
	}
	d := &docBuild{done: make(chan struct{}), name: docBinaryName(pkg)}
	b.builds[pkg] = d
	go func() {
		defer close(d.done)
		mod, err := moduleDir(b.root, pkg)
		if err != nil {
			d.err = err
			return
		}
		rel, _ := filepath.Rel(mod, filepath.Join(b.root, pkg))
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(b.bin, d.name), "./"+filepath.ToSlash(rel))
		build.Dir = mod
		build.Env = append(os.Environ(), "CGO_ENABLED=0") // as reliaBinary, for its cache
		if out, err := build.CombinedOutput(); err != nil {
			d.err = fmt.Errorf("building ./%s: %v\n%s", pkg, err, out)
		}
	}()
	return d
}

// binary waits for pkg's program and returns its name on the pages' PATH.
func (b *docBinaries) binary(pkg string) (string, error) {
	d := b.start(pkg)
	<-d.done
	return d.name, d.err
}

// wait waits for every build started, so that none writes into a folder
// being removed.
func (b *docBinaries) wait() {
	b.mu.Lock()
	builds := make([]*docBuild, 0, len(b.builds))
	for _, d := range b.builds {
		builds = append(builds, d)
	}
	b.mu.Unlock()
	for _, d := range builds {
		<-d.done
	}
}

// moduleDir returns the folder of the Go module that holds pkg: the
// nearest go.mod at or above it, within the repository.
func moduleDir(root, pkg string) (string, error) {
	for dir := filepath.Join(root, pkg); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		if dir == root || len(dir) < len(root) {
			return "", fmt.Errorf("./%s is in no Go module of the repository", pkg)
		}
	}
}

// docBaseEnv is the caller's environment for pages: PATH with bin and
// the repository's test-deps first, the Go caches kept (HOME changes),
// the Go toolchain the one installed, no RELIA_ variables.
func docBaseEnv(t docT, root, bin string) []string {
	goenv, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	gv := strings.Split(strings.TrimSpace(string(goenv)), "\n")
	if len(gv) != 3 {
		t.Fatalf("go env: %q", goenv)
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == "PATH", name == "HOME", name == "TMPDIR", name == "PWD", name == "OLDPWD",
			name == "GOCACHE", name == "GOMODCACHE", name == "GOPATH", name == "GOTOOLCHAIN",
			strings.HasPrefix(name, "RELIA_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"PATH="+bin+string(os.PathListSeparator)+filepath.Join(root, ".tools", "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GOCACHE="+gv[0], "GOMODCACHE="+gv[1], "GOPATH="+gv[2], "GOTOOLCHAIN=local")
}

// repoFiles lists the repository's files as a checkout has them: tracked
// and untracked ones that git does not ignore (a page being written is
// tested before it is committed). Without git, every file but those of
// hidden folders and bin/.
func repoFiles(t docT, root string) []string {
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err == nil {
		var files []string
		for _, f := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
			if _, err := os.Lstat(filepath.Join(root, f)); err == nil { // not deleted in the worktree
				files = append(files, f)
			}
		}
		return files
	}
	var files []string
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// portRewritten reports whether the ports of a file of the repository
// move in a page's copy: the text files the docs point readers to.
func portRewritten(rel string, data []byte) bool {
	return (strings.HasPrefix(rel, "examples/") || strings.HasPrefix(rel, "deploy/") || strings.HasPrefix(rel, "docs/")) &&
		!strings.HasSuffix(rel, ".go") && !bytes.Contains(data, []byte{0})
}

// documentedPorts returns the loopback ports of 1024 and above that
// README.md and the files whose ports move name, with relia's defaults.
func documentedPorts(t docT, root string, files []string) []int {
	seen := map[int]bool{}
	for _, p := range docDefaultPorts() {
		seen[p] = true
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if f != "README.md" && !portRewritten(f, data) {
			continue
		}
		for _, m := range hostPortRE.FindAllStringSubmatch(string(data), -1) {
			if n, _ := strconv.Atoi(m[2]); n >= 1024 && n < 65536 {
				seen[n] = true
			}
		}
	}
	var ports []int
	for p := range seen {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	return ports
}

// docPortsTaken keeps the free ports handed to pages apart, since pages
// run side by side.
var docPortsTaken = struct {
	sync.Mutex
	m map[int]bool
}{m: map[int]bool{}}

// freeDocPort returns a loopback port nothing listens on now that no
// other page was given, with the docPortSpan-1 ports above it, which it
// keeps for the page too: an experiment's autoscaled service listens on
// its port plus the replica's index (examples/capacity/autoscale.yaml),
// and a replica that found its port given to another page's server
// failed the page's requests.
func freeDocPort(t docT) int {
	docPortsTaken.Lock()
	defer docPortsTaken.Unlock()
next:
	for {
		p := freePort(t)
		for q := p; q < p+docPortSpan; q++ {
			if docPortsTaken.m[q] || (q > p && !portFree(q)) {
				continue next
			}
		}
		for q := p; q < p+docPortSpan; q++ {
			docPortsTaken.m[q] = true
		}
		return p
	}
}

// docPortSpan is how many ports from a page's free port up are the page's
// (freeDocPort): more than an autoscaled service of the docs has replicas.
const docPortSpan = 8

// portFree reports whether nothing listens on loopback port p now.
func portFree(p int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// Doc ports come from below Linux's default ephemeral range (32768 and
// up), where port 0 listeners and outgoing connections of the tests
// running beside the page take theirs: a port picked there could be
// taken again before the page's server listens on it.
const docPortLow, docPortHigh = 20000, 32768

// freePort returns a loopback port nothing listens on now, outside the
// ephemeral range.
func freePort(t docT) int {
	for range 1000 {
		p := docPortLow + rand.IntN(docPortHigh-docPortLow-docPortSpan)
		if portFree(p) {
			return p
		}
	}
	t.Fatal("no free loopback port between 20000 and 32767")
	return 0
}

// docSession is one page's world: its copy of the repository, ports, the
// bash that runs its commands and the jobs that bash started.
type docSession struct {
	t      docT
	page   docPage
	dir    string      // the page's copy of the repository, where it starts
	cwd    string      // the shell's working directory after the last command
	tmp    string      // its TMPDIR
	out    string      // the commands' output, one file each
	ports  map[int]int // documented -> free
	token  string
	shell  *exec.Cmd
	stdin  io.WriteCloser
	status chan string // the shell's reports, one line each
	jobs   []*docJob
	seq    int
	// binary returns the name of a package's program on the PATH, built
	// once (docBinaries); nil leaves `go run` as written.
	binary func(pkg string) (string, error)
	// stopTimeout is how long jobs have to exit after SIGINT at the end.
	stopTimeout time.Duration
}

// docJob is a command a page runs in the background.
type docJob struct {
	where, cmd string
	pgid       int // with job control, each job is a process group
	out        string
	ports      []int // where it said it listens
}

// runDocPage runs one page's commands in order and stops at the first
// that fails.
func runDocPage(t docT, e *docEnv, p docPage) {
	s := newDocSession(t, e, p)
	for _, b := range p.blocks {
		for _, c := range b.commands {
			if !s.step(c) {
				return
			}
		}
	}
}

func newDocSession(t docT, e *docEnv, p docPage) *docSession {
	base := t.TempDir()
	s := &docSession{
		t: t, page: p,
		dir: filepath.Join(base, "relia"), tmp: filepath.Join(base, "tmp"), out: filepath.Join(base, "out"),
		ports:       map[int]int{},
		token:       fmt.Sprintf("%s-%d-%d", p.name(), os.Getpid(), time.Now().UnixNano()),
		status:      make(chan string, 16),
		stopTimeout: docStopTimeout,
	}
	s.cwd = s.dir
	if e.binaries != nil {
		s.binary = e.binaries.binary
	}
	for _, d := range []string{s.dir, s.tmp, s.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, port := range e.ports {
		s.ports[port] = freeDocPort(t)
	}
	s.copyRepo(e)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log, err := os.Create(filepath.Join(base, "shell.log"))
	if err != nil {
		t.Fatal(err)
	}
	s.shell = exec.Command("bash", "--noprofile", "--norc", "-s")
	if interruptIgnored() {
		// A test run started in the background of a shell without job
		// control (as CI may start it) ignores SIGINT, every child
		// inherits that, and bash cannot undo it: the page's servers
		// would then outlive the Ctrl-C that ends them in a terminal.
		s.shell = exec.Command("env", "--default-signal=INT,QUIT", "bash", "--noprofile", "--norc", "-s")
	}
	s.shell.Dir = s.dir
	s.shell.Env = append(slices.Clone(e.env), "HOME="+s.dir, "TMPDIR="+s.tmp, docSessionVar+"="+s.token)
	s.shell.Stdout, s.shell.Stderr = log, log
	s.shell.ExtraFiles = []*os.File{w} // fd 3: the shell's reports
	s.shell.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.stdin, err = s.shell.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := s.shell.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	log.Close()
	go func() { // ends when the shell and every command have closed fd 3
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			s.status <- sc.Text()
		}
		close(s.status)
		r.Close()
	}()
	t.Cleanup(s.close)
	// Job control: each background job is a process group that `kill %N`
	// and the end of the page signal whole, and that gets SIGINT.
	s.send("set -m -o pipefail\n")
	return s
}

// copyRepo copies the repository's files into the page's folder, with
// the documented ports of the files the docs point to moved.
func (s *docSession) copyRepo(e *docEnv) {
	for _, rel := range e.files {
		src, dst := filepath.Join(e.root, rel), filepath.Join(s.dir, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			s.t.Fatal(err)
		}
		info, err := os.Lstat(src)
		if err != nil {
			s.t.Fatal(err)
		}
		if info.Mode()&os.ModeSymlink != 0 {
			to, err := os.Readlink(src)
			if err == nil {
				err = os.Symlink(to, dst)
			}
			if err != nil {
				s.t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			s.t.Fatal(err)
		}
		if portRewritten(rel, data) {
			data = []byte(rewritePorts(string(data), s.ports))
		}
		if err := os.WriteFile(dst, data, info.Mode().Perm()); err != nil {
			s.t.Fatal(err)
		}
	}
}

// send writes script to the shell.
func (s *docSession) send(script string) {
	if _, err := io.WriteString(s.stdin, script); err != nil {
		s.t.Fatalf("writing to the page's shell: %v\n%s", err, s.shellLog())
	}
}

// report waits for the shell's next report.
func (s *docSession) report(timeout time.Duration) (string, error) {
	select {
	case line, ok := <-s.status:
		if !ok {
			return "", errors.New("the page's shell ended (a syntax error ends it):\n" + s.shellLog())
		}
		return line, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("it did not finish within %s (a server that runs until interrupted needs a trailing &)", timeout)
	}
}

// rewrite applies docRewrites to a command, logging each that changes it.
func (s *docSession) rewrite(where, cmd string) string {
	for _, r := range docRewrites {
		if next := r.apply(cmd, s); next != cmd {
			if s.t != nil {
				s.t.Logf("%s: rewrite (%s): %s", where, r.what, next)
			}
			cmd = next
		}
	}
	return cmd
}

// step runs one command and reports whether the page goes on.
func (s *docSession) step(c docCommand) bool {
	where := fmt.Sprintf("%s:%d", s.page.file, c.line)
	if reason := skipReason(c.text); reason != "" {
		s.t.Logf("%s: skipped %q: %s", where, c.text, reason)
		return true
	}
	cmd := s.rewrite(where, c.text)
	// A quote left open would swallow the page's next commands.
	if out, err := exec.Command("bash", "-n", "-c", cmd).CombinedOutput(); err != nil {
		s.t.Errorf("%s: %q is not a complete bash command: %v\n%s", where, c.text, err, out)
		return false
	}
	s.seq++
	out := filepath.Join(s.out, strconv.Itoa(s.seq)+".out")
	if c.background {
		return s.background(where, cmd, out)
	}
	if serverOf(cmd) != nil {
		s.t.Errorf("%s: %q runs until interrupted: write it with a trailing & so that the page goes on", where, c.text)
		return false
	}
	// The braces keep a cd and a here-document in the page's shell; the
	// report goes to fd 3, which the command itself does not get.
	start := time.Now()
	s.send(fmt.Sprintf("{ %s\n} </dev/null >%s 2>&1 3>&-; echo \"$? %d $PWD\" >&3\n", cmd, shellQuote(out), s.seq))
	line, err := s.report(docCommandTimeout)
	took := time.Since(start).Round(10 * time.Millisecond)
	if err != nil {
		s.t.Errorf("%s: %q: %v\n%s%s", where, cmd, err, tail(readFile(out), 4000), s.jobsOutput())
		return false
	}
	f := strings.SplitN(line, " ", 3)
	code, _ := strconv.Atoi(f[0])
	if len(f) != 3 || f[1] != strconv.Itoa(s.seq) {
		s.t.Fatalf("%s: the shell reported %q for command %d", where, line, s.seq)
	}
	s.cwd = f[2]
	output := readFile(out)
	want := c.exitCode()
	switch {
	case code == want:
		s.t.Logf("%s: $ %s\nexit %d in %s\n%s", where, cmd, code, took, tail(output, 600))
		return true
	case docInconclusive(code) && want != code:
		s.t.Logf("%s: $ %s\ninconclusive (exit %d in %s): the load generator could not keep its own schedule on this machine, "+
			"so the service was not judged; the command itself ran:\n%s", where, cmd, code, took, tail(output, 1500))
		return true
	}
	if h := harnessIn(cmd); h != nil && code == 1 && want == 0 && h.ran.MatchString(output) {
		s.t.Logf("%s: $ %s\nexit 1 in %s: the harness measured and missed its bar, which speaks of this busy machine; "+
			"its figures are taken on a quiet one (docs/benchmarks.md):\n%s", where, cmd, took, tail(output, 1500))
		return true
	}
	s.t.Errorf("%s: %q exited %d after %s, want %d:\n%s%s", where, cmd, code, took, want, tail(output, 4000), s.jobsOutput())
	return false
}

// background starts a command as a job of the page's shell and waits
// until it listens where it says it will.
func (s *docSession) background(where, cmd, out string) bool {
	ports, err := s.listenPorts(cmd)
	if err != nil {
		s.t.Errorf("%s: %q: %v", where, cmd, err)
		return false
	}
	// A reader who starts a server where one of the page's still listens
	// gets "address already in use", and the page goes on against the
	// old one.
	for _, p := range ports {
		for _, j := range s.jobs {
			if slices.Contains(j.ports, p) && !s.gone(j) {
				s.t.Errorf("%s: %q listens on %d, where the page's server of %s (%q) still listens: stop that one first (kill %%N)",
					where, cmd, p, j.where, j.cmd)
				return false
			}
		}
	}
	s.send(fmt.Sprintf("{ %s\n} </dev/null >%s 2>&1 3>&- &\necho \"bg $! %d\" >&3\n", cmd, shellQuote(out), s.seq))
	line, err := s.report(10 * time.Second)
	if err != nil {
		s.t.Errorf("%s: starting %q: %v", where, cmd, err)
		return false
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "bg" || f[2] != strconv.Itoa(s.seq) {
		s.t.Fatalf("%s: the shell reported %q for background command %d", where, line, s.seq)
	}
	pgid, _ := strconv.Atoi(f[1])
	j := &docJob{where: where, cmd: cmd, pgid: pgid, out: out, ports: ports}
	s.jobs = append(s.jobs, j)
	if len(ports) == 0 {
		s.t.Logf("%s: $ %s &\nstarted in the background (process group %d); it names no address to wait for", where, cmd, pgid)
		return true
	}
	s.t.Logf("%s: $ %s &\nstarted in the background (process group %d); the page goes on once it listens on %v", where, cmd, pgid, ports)
	deadline := time.Now().Add(docListenTimeout)
	for _, p := range ports {
		for {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), time.Second)
			if err == nil {
				conn.Close()
				break
			}
			if !groupAlive(pgid) {
				s.t.Errorf("%s: %q exited before it listened on %d:\n%s", where, cmd, p, tail(readFile(out), 4000))
				return false
			}
			if time.Now().After(deadline) {
				s.t.Errorf("%s: %q does not listen on %d after %s:\n%s", where, cmd, p, docListenTimeout, tail(readFile(out), 4000))
				return false
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return true
}

var (
	listenFlagRE = regexp.MustCompile(`(?:^|\s)(?:` + strings.Join(mapSlice(docListenFlags, regexp.QuoteMeta), "|") + `)[ =]['"]?([^\s'"]+)`)
	configFlagRE = regexp.MustCompile(`(?:^|\s)(?:--config|-c)[ =](\S+)`)
)

func mapSlice(s []string, f func(string) string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = f(v)
	}
	return out
}

// gone reports whether a job has exited, giving one that was just
// stopped (`kill %1`) a moment to.
func (s *docSession) gone(j *docJob) bool {
	for deadline := time.Now().Add(s.stopTimeout); groupAlive(j.pgid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// listenPorts returns the ports a background command says it listens on:
// its address flags, and a server's config file (docServers).
func (s *docSession) listenPorts(cmd string) ([]int, error) {
	var addrs []string
	for _, m := range listenFlagRE.FindAllStringSubmatch(cmd, -1) {
		addrs = append(addrs, m[1])
	}
	if sv := serverOf(cmd); sv != nil && sv.config != nil {
		if m := configFlagRE.FindStringSubmatch(cmd); m != nil {
			path := m[1]
			if !filepath.IsAbs(path) {
				path = filepath.Join(s.cwd, path)
			}
			more, err := sv.config(path)
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, more...)
		}
	}
	var ports []int
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				ports = append(ports, n)
			}
		}
	}
	return ports, nil
}

// close ends the page: SIGINT to every job still running, as Ctrl-C
// would, then a search for anything the page started that is still
// there; both are failures.
func (s *docSession) close() {
	var alive []*docJob
	for _, j := range s.jobs {
		if groupAlive(j.pgid) {
			_ = syscall.Kill(-j.pgid, syscall.SIGINT)
			alive = append(alive, j)
		}
	}
	deadline := time.Now().Add(s.stopTimeout)
	for _, j := range alive {
		for groupAlive(j.pgid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if groupAlive(j.pgid) {
			still := groupProcs(j.pgid)
			_ = syscall.Kill(-j.pgid, syscall.SIGKILL)
			s.t.Errorf("%s: %q did not stop within %s of SIGINT (Ctrl-C) at the end of the page (still running: %s):\n%s", j.where, j.cmd, s.stopTimeout, still, tail(readFile(j.out), 2000))
		} else {
			s.t.Logf("%s: %q stopped on SIGINT at the end of the page", j.where, j.cmd)
		}
	}
	// What a job started outside its process group (a launched process)
	// has a moment to go with it.
	var left []docProc
	for deadline := time.Now().Add(s.stopTimeout / 2); ; time.Sleep(100 * time.Millisecond) {
		left = sessionProcs(s.token, s.shell.Process.Pid)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, p := range left {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		s.t.Errorf("%s: process %d (%s) was still running after the page's jobs stopped: whatever a page starts must end with it", s.page.file, p.pid, p.cmdline)
	}
	// SIGKILL is acted on when the process next runs; on a busy machine
	// that is after kill returns, so wait for each to be gone, or the
	// next page could meet it.
	for _, p := range left {
		for deadline := time.Now().Add(docStopTimeout); procAlive(p.pid) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.shell.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(docStopTimeout):
		_ = syscall.Kill(-s.shell.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// jobsOutput is the output of the page's background jobs so far, for a
// failure's message.
func (s *docSession) jobsOutput() string {
	var b strings.Builder
	for _, j := range s.jobs {
		fmt.Fprintf(&b, "\n--- output of %s: %s &\n%s", j.where, j.cmd, tail(readFile(j.out), 1500))
	}
	return b.String()
}

func (s *docSession) shellLog() string {
	return tail(readFile(filepath.Join(filepath.Dir(s.dir), "shell.log")), 2000)
}

// interruptIgnored reports whether this process was started with SIGINT
// ignored (bit 2 of SigIgn in /proc/self/status).
func interruptIgnored() bool {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(int(syscall.SIGINT)-1)) != 0
		}
	}
	return false
}

// groupProcs describes the live processes of a process group (pid,
// state, command line), for a failure's message.
func groupProcs(pgid int) string {
	var out []string
	eachProc(func(pid int, state byte, pgrp int) bool {
		if pgrp == pgid && state != 'Z' {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			var sigs []string
			for _, l := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(l, "SigBlk") || strings.HasPrefix(l, "SigIgn") || strings.HasPrefix(l, "SigCgt") || strings.HasPrefix(l, "SigPnd") || strings.HasPrefix(l, "ShdPnd") {
					sigs = append(sigs, strings.Join(strings.Fields(l), " "))
				}
			}
			out = append(out, fmt.Sprintf("%d %c %q [%s]", pid, state, strings.ReplaceAll(string(cmdline), "\x00", " "), strings.Join(sigs, "; ")))
		}
		return true
	})
	return strings.Join(out, ", ")
}

// procAlive reports whether a process exists and has not exited.
func procAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || len(stat) < i+3 || stat[i+2] != 'Z'
}

// docProc is a process found in /proc.
type docProc struct {
	pid     int
	cmdline string
}

// groupAlive reports whether a process group has a process that has not
// exited. Without /proc, whether it has a process at all (the page's
// shell reaps its jobs, so few are zombies).
func groupAlive(pgid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	found := false
	eachProc(func(pid int, state byte, pgrp int) bool {
		found = pgrp == pgid && state != 'Z'
		return !found
	})
	return found
}

// sessionProcs returns the live processes whose environment carries the
// page's token, but for its shell (none where there is no /proc to read).
func sessionProcs(token string, shell int) []docProc {
	want := []byte(docSessionVar + "=" + token)
	var out []docProc
	eachProc(func(pid int, state byte, _ int) bool {
		if pid == shell || state == 'Z' {
			return true
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			return true
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, docProc{pid: pid, cmdline: strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '})))})
		return true
	})
	return out
}

// eachProc calls fn with every process's id, state and process group
// until fn returns false.
func eachProc(fn func(pid int, state byte, pgrp int) bool) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold anything.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 3 {
			continue
		}
		pgrp, _ := strconv.Atoi(f[2])
		if !fn(pid, f[0][0], pgrp) {
			return
		}
	}
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// docRecorder is a docT that records failures instead of failing, so that
// TestDocSession can check what the harness reports.
type docRecorder struct {
	*testing.T
	mu       sync.Mutex
	errors   []string
	logs     []string
	cleanups []func()
}

func (r *docRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *docRecorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *docRecorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// finish runs what the page registered, as the end of its test would.
func (r *docRecorder) finish() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// TestDocSession pins what a page may count on and what fails it: the
// working directory and files carry from one command to the next, a
// here-document is one command, ports move in the copy, `# exit N` is
// honoured, the first unexpected exit stops the page, `kill %N` works,
// and at the end a job that ignores Ctrl-C and a process that escaped
// its job are both failures.
func TestDocSession(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "examples", "x.yaml"), []byte("target: http://127.0.0.1:8080/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	md := "# a page\n```sh\nmkdir -p sub && cd sub\npwd > ../where.txt\ncat > notes.txt <<'EOF'\nport 127.0.0.1:8080 # kept\nEOF\n```\n" +
		"Prose.\n```console\n$ grep -q '# kept' notes.txt\nnot a command\n$ grep -q :8080 notes.txt   # exit 1: the port moved\n" +
		"$ grep -q :8080 ../examples/x.yaml   # exit 1: in the copy too\n$ make test\n```\n" +
		"```sh\nsleep 300 &\nkill %1\nsleep 301 &\n(set -m; sleep 302 &)\nbash -c \"trap '' INT; touch trapped; sleep 303\" &\nuntil test -e trapped; do sleep 0.1; done\nfalse   # exit 1\n" +
		"true   # exit 3\ntouch after-failure\n```\n"
	page := docPage{file: "f.md", blocks: parseDocBlocks("f.md", md)}
	r := &docRecorder{T: t}
	env := &docEnv{root: root, bin: t.TempDir(), files: []string{"examples/x.yaml"}, ports: []int{8080}}
	env.env = docBaseEnv(t, root, env.bin)
	s := newDocSession(r, env, page)
	s.stopTimeout = time.Second
	for _, b := range page.blocks {
		for _, c := range b.commands {
			if !s.step(c) {
				goto end
			}
		}
	}
end:
	if !strings.HasSuffix(s.cwd, "/sub") || strings.TrimSpace(readFile(filepath.Join(s.dir, "where.txt"))) != s.cwd {
		t.Errorf("the cd did not carry: cwd %q, where.txt %q", s.cwd, readFile(filepath.Join(s.dir, "where.txt")))
	}
	if _, err := os.Stat(filepath.Join(s.cwd, "after-failure")); err == nil {
		t.Error("the page went on after a command exited otherwise than its comment says")
	}
	shell := s.shell.Process.Pid
	r.finish()
	want := []string{
		`f.md:25: "true" exited 0`,
		`f.md:22: "bash -c \"trap '' INT; touch trapped; sleep 303\"" did not stop within 1s of SIGINT`,
		`f.md: process `, // sleep 302, out of its job's process group
	}
	if len(r.errors) != len(want) {
		t.Errorf("%d failures, want %d:\n%s", len(r.errors), len(want), strings.Join(r.errors, "\n"))
	}
	for _, w := range want {
		if !slices.ContainsFunc(r.errors, func(e string) bool { return strings.HasPrefix(e, w) }) {
			t.Errorf("no failure starting %q in:\n%s", w, strings.Join(r.errors, "\n"))
		}
	}
	if !slices.ContainsFunc(r.errors, func(e string) bool { return strings.Contains(e, "(sleep 302)") }) {
		t.Errorf("the escaped process is not named:\n%s", strings.Join(r.errors, "\n"))
	}
	if !slices.ContainsFunc(r.logs, func(l string) bool { return strings.Contains(l, `"sleep 301" stopped on SIGINT`) }) {
		t.Errorf("the job left running is not stopped with SIGINT:\n%s", strings.Join(r.logs, "\n"))
	}
	if left := sessionProcs(s.token, shell); len(left) > 0 {
		t.Errorf("processes left after the page: %v", left)
	}

	// A quote left open is refused before it reaches the shell, where it
	// would take the page's next commands for its text.
	r = &docRecorder{T: t}
	open := docPage{file: "g.md", blocks: parseDocBlocks("g.md", "```sh\necho 'open\ntrue\n```\n")}
	s = newDocSession(r, env, open)
	if s.step(open.blocks[0].commands[0]) || len(r.errors) != 1 || !strings.Contains(r.errors[0], "g.md:2: \"echo 'open\" is not a complete bash command") {
		t.Errorf("an open quote: %q", r.errors)
	}
	r.finish()

	// A harness of bench/ that measured and missed its bar (exit 1, its
	// figures printed) passes; one that exits 1 before it measured fails.
	harness := "#!/bin/sh\necho \"args: $*\"\nif [ \"$1\" = -broken ]; then echo 'pinning: invalid argument'; exit 1; fi\n" +
		"echo 'USL over all steps: λ 1'; echo 'bench/capacity: 40% off'; exit 1\n"
	if err := os.WriteFile(filepath.Join(env.bin, docBinaryName("bench/capacity")), []byte(harness), 0o755); err != nil {
		t.Fatal(err)
	}
	r = &docRecorder{T: t}
	bench := docPage{file: "b.md", blocks: parseDocBlocks("b.md", "```sh\nrelia-bench-capacity -step 10s\nrelia-bench-capacity -broken\n```\n")}
	s = newDocSession(r, env, bench)
	if c := bench.blocks[0].commands; !s.step(c[0]) || s.step(c[1]) || len(r.errors) != 1 || !strings.Contains(r.errors[0], "b.md:3:") {
		t.Errorf("harness exits: %q", r.errors)
	}
	if !slices.ContainsFunc(r.logs, func(l string) bool {
		return strings.Contains(l, "args: -step 2s -concurrency 1,2,4,8,16 -leave-out 4") && strings.Contains(l, "missed its bar")
	}) {
		t.Errorf("the harness did not run short, or its missed bar was not logged:\n%s", strings.Join(r.logs, "\n"))
	}
	r.finish()

	// A server started where one of the page's still listens is refused
	// (a reader would get "address already in use" and go on against the
	// first); once the first is stopped, the same address is free again.
	if err := os.Symlink(reliaBinary(t), filepath.Join(env.bin, "relia")); err != nil {
		t.Fatal(err)
	}
	env.ports = []int{8474}
	r = &docRecorder{T: t}
	twice := docPage{file: "h.md", blocks: parseDocBlocks("h.md",
		"```sh\nrelia fault serve &\nrelia fault serve --listen 127.0.0.1:8474 &\nkill %1\nrelia fault serve --listen 127.0.0.1:8474 &\nrelia fault list\n```\n")}
	s = newDocSession(r, env, twice)
	s.stopTimeout = 5 * time.Second
	c := twice.blocks[0].commands
	if !s.step(c[0]) || s.step(c[1]) || len(r.errors) != 1 ||
		!strings.Contains(r.errors[0], fmt.Sprintf("h.md:3: \"relia fault serve --listen 127.0.0.1:%d\" listens on %[1]d, where the page's server of h.md:2", s.ports[8474])) {
		t.Errorf("a second server on the first's address: %q", r.errors)
	}
	for _, c := range c[2:] {
		if !s.step(c) {
			t.Errorf("%s: %q", c.text, r.errors)
		}
	}
	r.finish()
	if len(r.errors) != 1 {
		t.Errorf("after the first server stopped: %q", r.errors)
	}
}
