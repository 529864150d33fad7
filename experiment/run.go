package experiment

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// RunOptions configure Run. The zero value runs on the real clock and
// writes nothing.
type RunOptions struct {
	// Clock is the time source of the whole run; nil means the real one.
	Clock clock.Clock
	// OutDir receives journal.json, report.html, the SLOs' Prometheus
	// rules and their promtool tests, and the logs of command services;
	// it is created if needed. Empty writes no files.
	OutDir string
	// Stdout receives the terminal summary; nil means none.
	Stdout io.Writer
	// Progress, when set, is called every second with a progress line
	// (phase, elapsed and planned time, req/s, p99, failed requests, the
	// first SLO's burn rate and budget spent) and the time elapsed, from
	// a goroutine of the run's own. The CLI redraws it on a terminal and
	// prints it every 10s elsewhere.
	Progress func(elapsed time.Duration, line string)
	// Logger receives the run's events (services started, faults started
	// and ended); nil discards them.
	Logger *slog.Logger
}

// Result is what a run did.
type Result struct {
	// Journal is the run's record, as journal.json holds it; nil when the
	// run stopped before it started.
	Journal *Journal
	// Verdict and Scorecard judge the run; nil and zero when it did not
	// get as far as sending traffic.
	Verdict   *Verdict
	Scorecard Scorecard
	// ExitCode is ExitPass, ExitFail, ExitBadArgs, ExitAborted or
	// ExitRuntime.
	ExitCode int
	// Files are the paths written into OutDir.
	Files []string
}

// InputError is a problem with the experiment found before any traffic
// was sent (a target that does not answer, a scenario the load generator
// rejects, a gateway fault on a route the gateway lacks): the run did
// nothing, and its exit code is ExitBadArgs.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// inputErrorf returns an InputError with a formatted message.
func inputErrorf(format string, args ...any) error {
	return &InputError{fmt.Errorf(format, args...)}
}

// Run carries out the plan: it starts what the target needs (the demo
// shop behind the relia gateway, command services), a fault server with
// the plan's proxies, then runs the phases back to back, each with its
// load, and applies every fault at its offsets as a lease held by the run,
// while the abort monitor watches. Every fault is rolled back on every
// path: on schedule, on abort (exit 3), when ctx ends (Ctrl-C or SIGTERM
// in the CLI: exit 3) and on a runtime error (exit 4). Then it judges the
// run and writes the outputs.
//
// The error is nil when the run was carried out, whatever its verdict;
// otherwise it says what went wrong, and Result.ExitCode is ExitBadArgs
// for an InputError (nothing was sent) or ExitRuntime. A run that failed
// after sending traffic still writes its journal and report.
func Run(ctx context.Context, p *Plan, o RunOptions) (*Result, error) {
	r := &runState{plan: p, opts: o, clock: clock.OrReal(o.Clock), log: o.Logger}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if err := r.setUp(ctx); err != nil {
		r.tearDown()
		code := ExitRuntime
		if errors.As(err, new(*InputError)) {
			code = ExitBadArgs
		}
		return &Result{ExitCode: code}, err
	}
	r.execute(ctx)
	r.tearDown()
	return r.finish()
}

// runState is one run's state.
type runState struct {
	plan  *Plan
	opts  RunOptions
	clock clock.Clock
	log   *slog.Logger

	faults *faultBackend
	target *system
	tests  []*load.Test
	// llm are the options of the phases whose load is an llm load, by
	// phase; their tests are nil.
	llm      map[int]llmload.Options
	rec      *outcome.Recorder
	measures *llmRecorders
	onsets   *Onsets
	// results are the phases' load results, each written by its phase's
	// goroutine and read once every load has ended.
	results []*load.Result
	start   time.Time
	ctx     context.Context // the caller's: its end is Ctrl-C or SIGTERM
	stop    func()          // ends the run early: faults, monitor, progress and load

	mu     sync.Mutex
	reason string  // why the run ended early: an End* reason; "" on schedule
	err    error   // the runtime error that ended it
	breach *Breach // the abort condition that ended it
	tl     Timeline
}

// setUp checks the plan against the world and starts everything the run
// needs, before any traffic.
func (r *runState) setUp(ctx context.Context) error {
	p := r.plan
	if err := Preflight(ctx, p, 0); err != nil {
		return &InputError{err}
	}
	if r.opts.OutDir != "" {
		if err := os.MkdirAll(r.opts.OutDir, 0o755); err != nil {
			return fmt.Errorf("creating the output folder: %w", err)
		}
	}
	var err error
	if r.faults, err = startFaults(ctx, p, r.clock, r.log); err != nil {
		return err
	}
	env := targetEnv{plan: p, clock: r.clock, log: r.log, faults: r.faults, logDir: r.opts.OutDir}
	if r.target, err = startTarget(ctx, env); err != nil {
		return err
	}
	if err := r.checkGatewayFaults(); err != nil {
		return err
	}
	var shopScenario []byte
	if r.target.shop != nil {
		shopScenario = r.target.shop.Scenario("")
	}
	if r.tests, err = phaseTests(p, r.target.url, shopScenario); err != nil {
		return err
	}
	r.llm = map[int]llmload.Options{}
	for i, ph := range p.Phases {
		if ph.Load.LLM == nil {
			continue
		}
		if r.llm[i], err = llmOptions(p, ph, r.target.url); err != nil {
			return inputErrorf("phase %s: llm load: %w", ph.Name, err)
		}
	}
	if r.rec, err = outcome.NewRecorder(outcome.Options{}); err != nil {
		return err
	}
	if r.measures, err = newLLMRecorders(); err != nil {
		return err
	}
	r.plan = p.bindMeasures(r.measures)
	p = r.plan
	r.onsets = NewOnsets(p, r.rec.Options().BucketWidth)
	r.results = make([]*load.Result, len(r.tests))
	return nil
}

// checkGatewayFaults checks that every gateway fault names a route of the
// gateway the run started.
func (r *runState) checkGatewayFaults() error {
	for _, f := range r.plan.Faults {
		if f.Kind != FaultGateway {
			continue
		}
		gw := r.target.gateway
		if gw == nil {
			return inputErrorf("fault %s: gateway faults need the relia gateway, which the run starts in front of a shop target; this target has none", f.Name)
		}
		if !slices.Contains(gw.routes, f.Gateway.Route) {
			return inputErrorf("fault %s: the gateway has no route %q (routes: %v)", f.Name, f.Gateway.Route, gw.routes)
		}
	}
	return nil
}

// tearDown stops what setUp started: the target, then the fault server
// (which ends any fault still held).
func (r *runState) tearDown() {
	if r.target != nil {
		r.target.close()
	}
	if r.faults != nil {
		r.faults.close()
	}
}

// end records why the run ends early, once, and stops it.
func (r *runState) end(reason string, err error, b *Breach) {
	r.mu.Lock()
	if r.reason == "" {
		r.reason, r.err, r.breach = reason, err, b
	}
	r.mu.Unlock()
	r.stop()
}

// why is the End* reason of faults ended by the run's end: the reason
// recorded by end, or the signal when the caller's context ended first.
func (r *runState) why() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reason == "" && r.ctx.Err() != nil {
		return EndRolledBackSignal
	}
	return orDefault(r.reason, EndStopped)
}

// execute runs the phases from the next recorder bucket boundary, so
// that phases and faults line up with the buckets the verdict reads.
func (r *runState) execute(ctx context.Context) {
	p := r.plan
	r.ctx = ctx
	r.start = alignUp(r.clock.Now(), r.rec.Options().BucketWidth)
	r.tl = Timeline{Start: r.start}
	// runCtx ends the faults, the abort monitor and the progress line;
	// loadCtx the load, which otherwise ends by itself with each phase.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	r.stop = func() { stopRun(); stopLoad() }

	var loads, watchers sync.WaitGroup
	for i, t := range r.tests {
		loads.Go(func() { r.runLoad(loadCtx, i, t) })
	}
	fr := (&faultRunner{plan: p, clock: r.clock, log: r.log, backend: r.faults, target: r.target, start: r.start, why: r.why,
		failed: func(err error) { r.end(EndRolledBackError, err, nil) }}).init()
	watchers.Go(func() { fr.runAll(runCtx) })
	monitor, err := NewAbortMonitor(p, r.rec, r.start, AbortOptions{Clock: r.clock})
	if err != nil {
		r.end(EndRolledBackError, err, nil)
	} else {
		watchers.Go(func() {
			if b, err := monitor.Run(runCtx); err == nil {
				r.log.Warn("abort condition breached", "condition", b.Condition, "reason", b.Reason)
				r.end(EndRolledBackAbort, nil, &b)
			}
		})
	}
	if r.opts.Progress != nil {
		watchers.Go(func() { r.progress(runCtx) })
	}

	if err := sleepUntil(runCtx, r.clock, r.start.Add(p.Total)); err != nil && ctx.Err() != nil {
		r.end(EndRolledBackSignal, nil, nil)
	}
	end := r.start.Add(p.Total)
	if r.why() != EndStopped {
		end = earliest(r.clock.Now(), end)
	}
	stopRun() // faults whose end is the run's end, the monitor, the progress line
	watchers.Wait()
	loads.Wait()
	r.tl.End = end
	r.tl.Faults = fr.snapshot()
	for _, ph := range p.Phases {
		from := r.start.Add(ph.Start)
		if from.Before(end) {
			r.tl.Phases = append(r.tl.Phases, PhaseRecord{Name: ph.Name, Start: from, End: earliest(r.start.Add(ph.End), end)})
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.breach != nil:
		r.tl.Abort = r.breach
	case r.reason == EndRolledBackSignal:
		r.tl.Abort = &Breach{Condition: "interrupted", Kind: "signal", Phase: r.phaseAt(end), At: end,
			Reason: "the run was interrupted (Ctrl-C or SIGTERM); every fault was rolled back"}
	}
}

// earliest returns the earlier of a and b.
func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// phaseAt names the phase running at t, or the last one.
func (r *runState) phaseAt(t time.Time) string {
	i := r.plan.PhaseAt(t.Sub(r.start))
	if i < 0 {
		i = len(r.plan.Phases) - 1
	}
	return r.plan.Phases[i].Name
}

// runLoad runs phase i's load from the phase's start, feeding the run's
// recorder. Its setup (a login, say) runs at once, before the first
// phase starts. A phase whose scenario keeps its own profile is cut at
// the phase's end.
func (r *runState) runLoad(ctx context.Context, i int, t *load.Test) {
	ph := r.plan.Phases[i]
	if ph.Load.LLM != nil {
		r.runLLM(ctx, i)
		return
	}
	if ph.Load.Rate == 0 && ph.Load.VUs == 0 && len(ph.Load.Stages) == 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		cut := r.clock.AfterFunc(r.start.Add(ph.End).Sub(r.clock.Now()), cancel)
		defer cut.Stop()
	}
	res, err := t.Run(ctx, load.RunOptions{Clock: r.clock, StartAt: r.start.Add(ph.Start), Live: r.rec, Observe: r.onsets.Observe})
	if err == nil {
		r.results[i] = res
	}
	if err != nil && ctx.Err() == nil {
		r.log.Error("phase load failed", "phase", ph.Name, "error", err)
		r.end(EndRolledBackError, fmt.Errorf("phase %s: %w", ph.Name, err), nil)
	}
}

// finish judges the run and writes its outputs.
func (r *runState) finish() (*Result, error) {
	p, tl := r.plan, r.tl
	res := &Result{ExitCode: ExitPass}
	var v *Verdict
	var sc *Scorecard
	if tl.End.After(tl.Start) {
		var err error
		if v, err = JudgeWith(p, r.rec, tl, JudgeOptions{Generator: generatorVerdict(p, r.results), Onsets: r.onsets}); err != nil {
			return &Result{ExitCode: ExitRuntime}, err
		}
		v.Tenants = r.measures.tenants.counts()
		score := Score(p, v)
		res.Verdict, res.Scorecard, res.ExitCode = v, score, v.ExitCode
		sc = &score
	} else if tl.Abort != nil {
		res.ExitCode = ExitAborted // interrupted before the first phase
	}
	if r.err != nil {
		res.ExitCode = ExitRuntime // the journal says so too
		if v != nil {
			v.Error = r.err.Error()
			if v.Inconclusive {
				res.ExitCode = ExitInconclusive
			}
			v.ExitCode = res.ExitCode
		}
	}
	if tl.End.Before(tl.Start) {
		tl.End = tl.Start
	}
	res.Journal = NewJournal(p, r.rec, tl, v, sc, res.ExitCode)
	files, err := writeOutputs(r.opts, p, r.rec, res)
	res.Files = files
	if err != nil {
		res.ExitCode = ExitRuntime // the outputs could not be written
	}
	return res, errors.Join(r.err, err)
}
