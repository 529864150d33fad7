package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
)

// Process fault types.
const (
	ProcKill     = "kill"      // kill a process; one relia launched restarts at the lease's end
	ProcRestart  = "restart"   // kill a process relia launched and start it again at once
	ProcPause    = "pause"     // SIGSTOP now, SIGCONT at the end
	ProcCPU      = "cpu"       // burn Cores cores at Percent percent
	ProcMemory   = "memory"    // hold Bytes of touched memory
	ProcDiskFill = "disk_fill" // write a file of Bytes at Path, removed at the end
)

// ProcessFault asks for a fault on the local machine.
type ProcessFault struct {
	// Name identifies the fault; it must be unique among active ones.
	Name string `json:"name"`
	// Type is one of ProcKill, ProcRestart, ProcPause, ProcCPU,
	// ProcMemory, ProcDiskFill.
	Type string `json:"type"`
	// PID is the target of kill and pause; Launched names a process
	// started with Launch instead (kill then restarts it at the end;
	// restart needs one).
	PID      int    `json:"pid,omitempty"`
	Launched string `json:"launched,omitempty"`
	// Cores and Percent shape a CPU burn; Cores is at most GOMAXPROCS,
	// since each burning goroutine needs a P of its own.
	Cores   int `json:"cores,omitempty"`
	Percent int `json:"percent,omitempty"`
	// Bytes sizes memory pressure and disk fill; neither may exceed what
	// the machine has available, so a fault cannot take the proxy (and the
	// faults it must revert) down with it.
	Bytes int64 `json:"bytes,omitempty" unit:"bytes"`
	// Path is the disk fill's file, an absolute path; it must not exist
	// yet.
	Path string `json:"path,omitempty"`
	// TTL is the lease; 0 means the default (DefaultLeaseTTL, or the
	// server's default lease for a server's process faults).
	TTL time.Duration `json:"-"`
}

// ProcessFaultInfo is an active process fault and its lease.
type ProcessFaultInfo struct {
	ProcessFault
	Lease Lease `json:"lease"`
}

// Errors of process faults, in the control API's shape.
var (
	ErrProcessFaultExists   = &APIError{"process fault already exists", 409}
	ErrProcessFaultNotFound = &APIError{"process fault not found", 404}
	ErrBadProcessFault      = &APIError{"bad process fault", 400}
)

// ProcessFaults runs process faults on the local machine, each under a
// lease; every fault is reverted when its lease ends, when it is stopped,
// and on Close (call it on exit).
type ProcessFaults struct {
	clock      clock.Clock
	audit      *slog.Logger
	defaultTTL time.Duration

	mu       sync.Mutex
	faults   map[string]*procFault
	launched map[string]*launched
	closed   bool
}

type launched struct {
	argv []string
	cmd  *exec.Cmd
	done chan struct{}
}

type procFault struct {
	spec    ProcessFault
	started time.Time
	expires time.Time
	timer   clock.Timer
	revert  func() error
	// burners holds the thread ids of a CPU burn's goroutines (Linux),
	// so a test can see them burn and go.
	burners chan int
	// memory is what a memory fault holds, so a test can see its pages
	// resident.
	memory []byte
}

// NewProcessFaults returns a manager; clk nil means the real clock, audit
// nil discards the audit log.
func NewProcessFaults(clk clock.Clock, audit *slog.Logger) *ProcessFaults {
	if audit == nil {
		audit = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	return &ProcessFaults{clock: clock.OrReal(clk), audit: audit, defaultTTL: DefaultLeaseTTL, faults: map[string]*procFault{}, launched: map[string]*launched{}}
}

// Launch starts argv as a process relia owns under name, so a kill fault
// can restart it when its lease ends.
func (m *ProcessFaults) Launch(name string, argv ...string) (int, error) {
	if name == "" || len(argv) == 0 {
		return 0, errors.New("launching: a name and a command are needed")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.launched[name]; ok {
		return 0, fmt.Errorf("launching %s: name in use", name)
	}
	l := &launched{argv: argv}
	if err := l.start(); err != nil {
		return 0, fmt.Errorf("launching %s: %w", name, err)
	}
	m.launched[name] = l
	return l.cmd.Process.Pid, nil
}

func (l *launched) start() error {
	cmd := exec.Command(l.argv[0], l.argv[1:]...)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	l.cmd, l.done = cmd, done
	return nil
}

// Launched returns the current pid of every launched process by name.
func (m *ProcessFaults) Launched() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int, len(m.launched))
	for name, l := range m.launched {
		out[name] = l.cmd.Process.Pid
	}
	return out
}

// LaunchedPID returns the current pid of a launched process.
func (m *ProcessFaults) LaunchedPID(name string) (int, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.launched[name]
	if !ok {
		return 0, false
	}
	return l.cmd.Process.Pid, true
}

func (m *ProcessFaults) check(f *ProcessFault) error {
	var errs []error
	if err := nameError("process fault", f.Name); err != nil {
		errs = append(errs, err)
	}
	if f.TTL < 0 || f.TTL > MaxLeaseTTL {
		errs = append(errs, fmt.Errorf("ttl must be within (0, %v], got %v", MaxLeaseTTL, f.TTL))
	}
	switch f.Type {
	case ProcKill, ProcPause, ProcRestart:
		if (f.PID > 0) == (f.Launched != "") {
			errs = append(errs, errors.New("name exactly one of pid and launched"))
		}
		if f.PID < 0 || f.PID == os.Getpid() {
			errs = append(errs, fmt.Errorf("pid %d is not a valid target", f.PID))
		}
		if f.Type == ProcRestart && f.PID != 0 {
			errs = append(errs, errors.New("restart needs a process relia launched: one named by pid cannot be started again faithfully"))
		}
	case ProcCPU:
		if procs := runtime.GOMAXPROCS(0); f.Cores < 1 || f.Cores > procs {
			errs = append(errs, fmt.Errorf("cores must be within [1, %d], got %d", procs, f.Cores))
		}
		if f.Percent < 1 || f.Percent > 100 {
			errs = append(errs, fmt.Errorf("percent must be within [1, 100], got %d", f.Percent))
		}
	case ProcMemory:
		if f.Bytes <= 0 {
			errs = append(errs, fmt.Errorf("bytes must be positive, got %d", f.Bytes))
		} else if avail, ok := memAvailable(); ok && f.Bytes > avail {
			errs = append(errs, fmt.Errorf("bytes %d exceed the %d bytes of memory available", f.Bytes, avail))
		}
	case ProcDiskFill:
		switch {
		case f.Path == "":
			errs = append(errs, errors.New("disk_fill needs a path"))
		case !filepath.IsAbs(f.Path):
			errs = append(errs, fmt.Errorf("disk_fill path %q must be absolute", f.Path))
		}
		if f.Bytes <= 0 {
			errs = append(errs, fmt.Errorf("bytes must be positive, got %d", f.Bytes))
		} else if free, ok := diskFree(filepath.Dir(f.Path)); ok && f.Bytes > free {
			errs = append(errs, fmt.Errorf("bytes %d exceed the %d bytes free under %s", f.Bytes, free, filepath.Dir(f.Path)))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown process fault type %q", f.Type))
	}
	return errors.Join(errs...)
}

// Start applies a fault and starts its lease.
func (m *ProcessFaults) Start(f ProcessFault) error {
	if err := m.check(&f); err != nil {
		return ErrBadProcessFault.detail("%q: %v", f.Name, err)
	}
	if f.TTL == 0 {
		f.TTL = m.defaultTTL
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("process faults are shut down")
	}
	if _, ok := m.faults[f.Name]; ok {
		return ErrProcessFaultExists.detail("%q", f.Name)
	}
	var burners chan int
	if f.Type == ProcCPU {
		burners = make(chan int, f.Cores)
	}
	var memory []byte
	revert, err := m.apply(f, burners, &memory)
	if err != nil {
		// The target is gone or the path taken: the request was wrong.
		return ErrBadProcessFault.detail("%q: %v", f.Name, err)
	}
	pf := &procFault{spec: f, started: m.clock.Now(), revert: revert, burners: burners, memory: memory}
	m.armLocked(pf)
	m.faults[f.Name] = pf
	m.audit.Info("fault started", "fault", f.Name, "type", f.Type, "pid", f.PID, "launched", f.Launched,
		"bytes", f.Bytes, "path", f.Path, "ttl", f.TTL.String())
	return nil
}

func (m *ProcessFaults) armLocked(pf *procFault) {
	if pf.timer != nil {
		pf.timer.Stop()
	}
	pf.expires = m.clock.Now().Add(pf.spec.TTL)
	pf.timer = m.clock.AfterFunc(pf.spec.TTL, func() { m.expire(pf) })
}

// apply does the fault and returns how to revert it; a CPU burn's
// goroutines send their thread ids to burners, a memory fault puts what
// it holds in memory. The caller holds mu.
func (m *ProcessFaults) apply(f ProcessFault, burners chan<- int, memory *[]byte) (func() error, error) {
	switch f.Type {
	case ProcPause:
		pid := f.PID
		if f.Launched != "" {
			l, ok := m.launched[f.Launched]
			if !ok {
				return nil, fmt.Errorf("no launched process %q", f.Launched)
			}
			pid = l.cmd.Process.Pid
		}
		if err := signalPID(pid, sigStop); err != nil {
			return nil, fmt.Errorf("stopping pid %d: %w", pid, err)
		}
		return func() error {
			if err := signalPID(pid, sigCont); err != nil && !errors.Is(err, errNoProcess) {
				return fmt.Errorf("resuming pid %d: %w", pid, err)
			}
			return nil
		}, nil
	case ProcRestart:
		l, ok := m.launched[f.Launched]
		if !ok {
			return nil, fmt.Errorf("no launched process %q", f.Launched)
		}
		l.cmd.Process.Kill()
		<-l.done
		if err := l.start(); err != nil {
			return nil, fmt.Errorf("restarting %s: %w", f.Launched, err)
		}
		// The restart is done; the lease only records its window.
		return func() error { return nil }, nil
	case ProcKill:
		if f.PID > 0 {
			// A process relia did not start cannot be brought back; the
			// lease then only records the fault's window.
			if err := signalPID(f.PID, sigKill); err != nil {
				return nil, fmt.Errorf("killing pid %d: %w", f.PID, err)
			}
			return func() error { return nil }, nil
		}
		l, ok := m.launched[f.Launched]
		if !ok {
			return nil, fmt.Errorf("no launched process %q", f.Launched)
		}
		l.cmd.Process.Kill()
		<-l.done
		return func() error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if err := l.start(); err != nil {
				return fmt.Errorf("restarting %s: %w", f.Launched, err)
			}
			return nil
		}, nil
	case ProcCPU:
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range f.Cores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A thread of its own, which ends with the goroutine, so
				// the burn shows up (and goes away) as one thread.
				runtime.LockOSThread()
				burners <- threadID()
				burn(ctx, f.Percent)
			}()
		}
		return func() error { cancel(); wg.Wait(); return nil }, nil
	case ProcMemory:
		mem, release, err := holdMemory(f.Bytes)
		if err != nil {
			return nil, fmt.Errorf("holding %d bytes: %w", f.Bytes, err)
		}
		*memory = mem
		return release, nil
	case ProcDiskFill:
		if err := fillFile(f.Path, f.Bytes); err != nil {
			os.Remove(f.Path)
			return nil, err
		}
		return func() error {
			if err := os.Remove(f.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("removing disk fill %s: %w", f.Path, err)
			}
			return nil
		}, nil
	}
	return nil, fmt.Errorf("unknown process fault type %q", f.Type)
}

// fillFile writes n bytes to a new file; it refuses to touch an existing
// one, so a disk fill can never clobber data.
func fillFile(path string, n int64) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating disk fill: %w", err)
	}
	buf := make([]byte, 1<<20)
	for left := n; left > 0; {
		k := min(left, int64(len(buf)))
		if _, err := file.Write(buf[:k]); err != nil {
			file.Close()
			return fmt.Errorf("filling %s: %w", path, err)
		}
		left -= k
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("filling %s: %w", path, err)
	}
	return nil
}

// memAvailable returns the memory the kernel can give without swapping
// (MemAvailable in /proc/meminfo); ok is false where that is unknown.
func memAvailable() (int64, bool) {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// burn keeps one core busy percent of every 100 ms until ctx ends. The
// duty cycle is real time by nature, so it reads the real clock.
func burn(ctx context.Context, percent int) {
	const period = 100 * time.Millisecond
	busy := period * time.Duration(percent) / 100
	for ctx.Err() == nil {
		start := time.Now()
		for time.Since(start) < busy {
		}
		if idle := period - busy; idle > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(idle):
			}
		}
	}
}

// Renew extends a fault's lease by ttl from now (0: by its own TTL).
func (m *ProcessFaults) Renew(name string, ttl time.Duration) error {
	if ttl < 0 || ttl > MaxLeaseTTL {
		return ErrBadProcessFault.detail("renewing %q: ttl must be within (0, %v], got %v", name, MaxLeaseTTL, ttl)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	pf, ok := m.faults[name]
	if !ok {
		return ErrProcessFaultNotFound.detail("%q", name)
	}
	if ttl > 0 {
		pf.spec.TTL = ttl
	}
	m.armLocked(pf)
	m.audit.Debug("fault renewed", "fault", name, "expires_at", pf.expires)
	return nil
}

// Active returns the active faults, sorted by name.
func (m *ProcessFaults) Active() []ProcessFaultInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]ProcessFaultInfo, 0, len(m.faults))
	for _, pf := range m.faults {
		out = append(out, pf.info())
	}
	slices.SortFunc(out, func(a, b ProcessFaultInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (pf *procFault) info() ProcessFaultInfo {
	return ProcessFaultInfo{ProcessFault: pf.spec, Lease: Lease{TTL: pf.spec.TTL.String(), ExpiresAt: pf.expires}}
}

func (m *ProcessFaults) expire(pf *procFault) {
	m.mu.Lock()
	if m.faults[pf.spec.Name] != pf || m.clock.Now().Before(pf.expires) {
		m.mu.Unlock()
		return
	}
	delete(m.faults, pf.spec.Name)
	m.mu.Unlock()
	m.end(pf, EndExpired)
}

// end reverts pf outside mu (a restart takes mu itself).
func (m *ProcessFaults) end(pf *procFault, reason string) error {
	pf.timer.Stop()
	err := pf.revert()
	attrs := []any{"fault", pf.spec.Name, "type", pf.spec.Type, "reason", reason, "active", m.clock.Since(pf.started).String()}
	if err != nil {
		attrs = append(attrs, "revert_error", err.Error())
	}
	m.audit.Info("fault ended", attrs...)
	return err
}

// Stop ends a fault now.
func (m *ProcessFaults) Stop(name string) error {
	m.mu.Lock()
	pf, ok := m.faults[name]
	delete(m.faults, name)
	m.mu.Unlock()
	if !ok {
		return ErrProcessFaultNotFound.detail("%q", name)
	}
	return m.end(pf, EndRemoved)
}

// Close reverts every fault (reason shutdown) and kills the processes it
// launched.
func (m *ProcessFaults) Close() error {
	m.mu.Lock()
	m.closed = true
	faults := m.faults
	m.faults = map[string]*procFault{}
	m.mu.Unlock()
	var errs []error
	for _, pf := range faults {
		errs = append(errs, m.end(pf, EndShutdown))
	}
	m.mu.Lock()
	for _, l := range m.launched {
		l.cmd.Process.Kill()
		<-l.done
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}
