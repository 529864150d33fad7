package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
)

// RunOptions configure one run of a Test. The zero value runs the whole
// test now, on the real clock.
type RunOptions struct {
	// Segment is this process's share of a distributed test ("--segment
	// i/N"); the zero value is the whole test.
	Segment Segment
	// Clock is the time source; nil means the real clock.
	Clock clock.Clock
	// StartAt, when set, is when the load starts (after setup), so that
	// the processes of a distributed test start together. Zero: at once.
	StartAt time.Time
	// Progress, when set, is called about once a second with a snapshot,
	// from a goroutine of the run's own.
	Progress func(Progress)
	// Registerer, when set, gets a collector of live Prometheus metrics
	// for the run's duration.
	Registerer prometheus.Registerer
	// KeepMetrics leaves that collector registered when Run returns, so
	// that a scrape after the run reads its final figures, the ones the
	// summary prints; the caller then owns the registry's lifetime.
	KeepMetrics bool
	// Live, when set, receives every request's outcome (dropped arrivals
	// included) as it is recorded into Result.Requests, so that a caller
	// can judge the load while it runs: an experiment's abort monitor and
	// verdict read one recorder fed by all of its phases.
	Live *outcome.Recorder
	// Observe, when set, is called with every outcome recorded into
	// Result.Requests, from the goroutine that recorded it: a caller that
	// needs more than buckets (when exactly an SLO's first bad event
	// happened) sees each one. It must be quick and safe for concurrent
	// use.
	Observe func(outcome.Outcome)
}

// Progress is a snapshot of a run for a live progress line.
type Progress struct {
	Elapsed, Duration time.Duration
	// Requests, Failed and Dropped count from the start: requests sent,
	// those that failed as k6's http_req_failed counts them (a transport
	// error or an unexpected status; failed checks are not failed
	// requests), arrivals never sent. Late counts the open model's
	// requests sent later than the scenario's lateAfter.
	Requests, Failed, Dropped, Late int64
	// RPS and P99 are those of the last whole second.
	RPS float64
	P99 time.Duration
	// Active is the number of VUs (closed model) or requests in flight
	// (open model).
	Active int
}

// Line is the snapshot as one line of text, the same on a terminal (where
// it is redrawn) and in a log: "12s/30s  498.0 req/s  p99 1.23ms  6012
// sent, 0 failed, 0 dropped, 3 late  in flight 4".
func (p Progress) Line() string {
	return fmt.Sprintf("%s/%s  %.1f req/s  p99 %s  %d sent, %d failed, %d dropped, %d late  active %d",
		elapsedText(p.Elapsed), elapsedText(p.Duration), p.RPS, outcome.FormatDuration(p.P99),
		p.Requests, p.Failed, p.Dropped, p.Late, p.Active)
}

// elapsedText writes a run's elapsed or planned time to the second:
// "9s", "2m5s".
func elapsedText(d time.Duration) string { return d.Round(time.Second).String() }

// ErrSetup is returned, wrapped, when the setup request fails: the test
// does not start.
var ErrSetup = errors.New("setup failed")

// Preflight dials every host the test sends to (those its URL templates
// name literally), so that an unreachable host is an error before the
// load starts rather than a run of refused connections.
func (t *Test) Preflight(ctx context.Context) error {
	if err := t.resolveGRPC(ctx); err != nil {
		return err
	}
	seen := map[string]bool{}
	steps := append([]*Step{t.Setup, t.Teardown}, t.Steps...)
	for _, s := range steps {
		if s == nil {
			continue
		}
		u, err := url.Parse(s.URL.String())
		if err != nil || u.Host == "" || !s.URL.hostStatic() {
			continue
		}
		host := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		if seen[host] {
			continue
		}
		seen[host] = true
		dctx, cancel := context.WithTimeout(ctx, min(t.Client.Timeout, 5*time.Second))
		conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", host)
		cancel()
		if err != nil {
			return fmt.Errorf("request %q: host %s is unreachable: %w", s.Name, host, err)
		}
		_ = conn.Close()
	}
	return nil
}

// hostStatic reports whether the template's scheme and host are literal
// text, so that a preflight dial can find them.
func (t *Template) hostStatic() bool {
	if len(t.parts) == 0 || t.parts[0].kind != partText {
		return false
	}
	u, err := url.Parse(t.parts[0].text)
	return err == nil && u.Host != "" && (len(t.parts) == 1 || len(u.Path) > 0 || u.RawQuery != "")
}

// runner is one run's state: the recorders every request goes through
// and the live counters the sampler reads.
type runner struct {
	t     *Test
	clk   clock.Clock
	tr    transport
	seg   Segment
	start time.Time
	vars  []string

	pool    *sync.Pool // send states, shared by all workers
	live    *outcome.Recorder
	observe func(outcome.Outcome)
	health  *healthMeter
	res     *Result
	byStep  []*outcome.Recorder // per step, the recorder of its name
	byCheck [][]*outcome.Recorder
	tagged  []taggedSet // the tag sets thresholds split by
	traces  traceLog
	users   []*user // a journey test's closed-model VUs (journey_run.go)

	requests, failed atomic.Int64
	dropped, late    atomic.Int64
	noConn           atomic.Int64 // requests that found no free connection
	active           atomic.Int64
	peakActive       atomic.Int64 // the most in flight at once (open model)
	cancel           context.CancelFunc
	nextStep         int // the next stress step to judge
	stopOnce         sync.Once
}

// taggedSet is a tag set's filter and recorders.
type taggedSet struct {
	f   *tagFilter
	set *TagSet
}

// Run runs the test: setup, the load (its segment of it), teardown. It
// returns the Result, whose thresholds Evaluate judges, or an error when
// the test could not run (setup failed, the client could not be made).
// Cancelling ctx stops the load early; the Result then covers what was
// sent and says so in Stopped.
func (t *Test) Run(ctx context.Context, o RunOptions) (*Result, error) {
	clk := clock.OrReal(o.Clock)
	seg := o.Segment
	if seg.Count == 0 {
		seg = Whole
	}
	if err := seg.Validate(); err != nil {
		return nil, err
	}
	tr, err := newTransport(t.Client)
	if err != nil {
		return nil, fmt.Errorf("making the HTTP client: %w", err)
	}
	defer tr.close()
	if err := t.resolveGRPC(ctx); err != nil {
		return nil, err
	}
	gc, err := t.dialGRPC()
	if err != nil {
		return nil, err
	}
	defer gc.close()
	r := &runner{t: t, clk: clk, tr: tr, seg: seg, vars: t.vars, pool: grpcStatePool(tr, gc), live: o.Live, observe: o.Observe}
	r.res, err = newResult(t, seg)
	if err != nil {
		return nil, err
	}
	if t.Setup != nil {
		vars, err := r.setup(ctx)
		if err != nil {
			return r.res, fmt.Errorf("%w: %w", ErrSetup, err)
		}
		r.vars = vars
	}
	r.recorders()
	if !o.StartAt.IsZero() {
		if err := clock.Sleep(ctx, clk, o.StartAt.Sub(clk.Now())); err != nil {
			return r.res, err
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.cancel = cancel
	if o.Registerer != nil {
		c := newCollector(r)
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("registering live metrics: %w", err)
		}
		if !o.KeepMetrics {
			defer o.Registerer.Unregister(c)
		}
	}
	r.health = newHealthMeter()
	r.start = clk.Now()
	// The result keeps its times on the wall clock alone (Round(0)), as
	// its JSON does: Go subtracts two times that carry a monotonic
	// reading by that reading, which an NTP slew moves against the wall
	// clock, so a run's span, and every rate over it, came out a few
	// parts per million apart in the run's own summary and page and in
	// what relia report and relia load merge read back from its file.
	r.res.Start = r.start.Round(0)
	samplerDone := make(chan struct{})
	samplerCtx, stopSampler := context.WithCancel(context.Background())
	go func() { // ends when the load is done
		defer close(samplerDone)
		r.sample(samplerCtx, runCtx, o.Progress)
	}()
	switch t.Model {
	case Open:
		e := &OpenExecutor{Schedule: t.Schedule, Segment: seg, MaxInFlight: t.MaxInFlight, Clock: clk,
			NewWorker: r.openWorker, Drop: r.drop}
		st := e.Run(runCtx, r.start)
		r.res.Dispatched, r.res.Dropped, r.res.MaxActive = st.Dispatched, st.Dropped, st.Workers
	case Closed:
		vus := make([]*Worker, seg.Share(uint64(t.VUs.Max())))
		if t.journeys != nil {
			r.users = make([]*user, len(vus))
		}
		e := &ClosedExecutor{Profile: t.VUs, Segment: seg, Clock: clk, GracefulStop: t.GracefulStop,
			Iterate: func(ctx context.Context, vu int) { r.iterate(ctx, vus, vu) },
			Active:  func(n int) { r.active.Store(int64(n)) }}
		st := e.Run(runCtx, r.start)
		// The iterations counted are those that completed, as the
		// iterations metric counts them.
		r.res.Iterations, r.res.MaxActive = uint64(r.res.Iters.Total().Total), st.MaxActive
	}
	r.res.End = clk.Now().Round(0)
	r.res.Traces = r.traces.result()
	stopSampler()
	<-samplerDone
	g := r.health.stats()
	g.Samples = r.res.Generator.Samples
	g.NoConnection, g.PeakInFlight = r.noConn.Load(), int(r.peakActive.Load())
	if t.Model == Open {
		g.MaxInFlight = max(t.MaxInFlight, 1) // each segment has the whole cap
	}
	r.res.Generator = g
	if runCtx.Err() != nil && r.res.Stopped == "" {
		r.res.Stopped = "interrupted"
	}
	if t.Teardown != nil {
		rep, _, err := r.once(t.Teardown, r.vars)
		r.res.Teardown = rep
		if err != nil && r.res.Stopped == "" {
			r.res.TeardownError = err.Error()
		}
	}
	return r.res, nil
}

// recorders points the runner at the result's recorders each step, check
// and tag set records into.
func (r *runner) recorders() {
	t := r.t
	r.byStep = make([]*outcome.Recorder, len(t.Steps))
	r.byCheck = make([][]*outcome.Recorder, len(t.Steps))
	for i, s := range t.Steps {
		r.byStep[i] = r.res.ByName[s.Name]
		for _, c := range s.Checks {
			r.byCheck[i] = append(r.byCheck[i], r.res.ByCheck[checkKey(s, &c)])
		}
	}
	for _, f := range t.filters {
		r.tagged = append(r.tagged, taggedSet{f: f, set: r.res.ByTags[f.key]})
	}
}

// once sends a setup or teardown request and judges it: a transport
// error, a status of 400 or more, a failed check or extraction fails it.
// setupAttempts bounds the tries of a setup request that failed the way a
// busy service fails (no answer, 429, a 5xx); setupBackoff is the pause
// before the second try, doubled for each one after. A login that blips
// once at the start of a long run must not cost the whole run; one that
// is refused (401, a missing field in a 200) is not tried again.
const (
	setupAttempts = 3
	setupBackoff  = 500 * time.Millisecond
)

// setup runs the test's setup request, again while it fails transiently,
// and returns the variables it extracted.
func (r *runner) setup(ctx context.Context) ([]string, error) {
	pause := setupBackoff
	for attempt := 1; ; attempt++ {
		rep, vars, err := r.once(r.t.Setup, r.vars)
		rep.Attempts = attempt
		r.res.Setup = rep
		if err == nil || attempt == setupAttempts || !transientStatus(rep.Status) {
			return vars, err
		}
		if clock.Sleep(ctx, r.clk, pause) != nil {
			return vars, err
		}
		pause *= 2
	}
}

// transientStatus reports whether a response status (0: none came) is
// one a busy or briefly failing service gives.
func transientStatus(status int) bool {
	return status == 0 || status == 429 || status >= 500
}

func (r *runner) once(s *Step, vars []string) (*StepReport, []string, error) {
	w := newPooledWorker(r.pool, r.clk, vars, r.t.Seed, -1)
	if r.t.data != nil {
		w.Env.Row = r.t.data.Next(w.Env.Rand)
	}
	res := w.Send(s)
	rep := &StepReport{Name: s.Name, Status: res.Status, Latency: res.Done.Sub(res.Sent)}
	var err error
	switch {
	case res.Err != nil:
		err = fmt.Errorf("request %q: %w", s.Name, res.Err)
	case !s.expects(res.Status):
		err = fmt.Errorf("request %q: status %d", s.Name, res.Status)
	case res.Failed():
		for i := range s.Checks {
			if res.FailedChecks&(1<<i) != 0 {
				err = fmt.Errorf("request %q: check %q failed", s.Name, s.Checks[i].Label())
				break
			}
		}
	}
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, w.Env.Vars, err
}

// openWorker makes the send function of one open-model worker.
func (r *runner) openWorker(id int) func(context.Context, Arrival) {
	if r.t.journeys != nil {
		return r.openJourneyWorker(id)
	}
	w := newPooledWorker(r.pool, r.clk, r.vars, r.t.Seed, id)
	w.traceSample = r.t.TraceSample
	t := r.t
	return func(_ context.Context, a Arrival) {
		// Every choice depends on the arrival's number alone, so a test
		// split into segments makes exactly the choices of the whole test.
		w.src.Seed(t.Seed, a.N)
		w.Env.Iter = a.N
		if t.data != nil {
			w.Env.Row = t.data.Next(w.Env.Rand)
		}
		s := t.mix.Pick(w.Env.Rand)
		if n := r.active.Add(1); n > r.peakActive.Load() {
			r.notePeak(n)
		}
		res := w.Send(s)
		r.active.Add(-1)
		r.record(s, a.Due, &res)
	}
}

// notePeak raises the peak of requests in flight to n.
func (r *runner) notePeak(n int64) {
	for p := r.peakActive.Load(); n > p && !r.peakActive.CompareAndSwap(p, n); p = r.peakActive.Load() {
	}
}

func (r *runner) drop(a Arrival) {
	r.dropped.Add(1)
	r.recordAll(outcome.Outcome{Start: a.Due, Class: outcome.ClassDropped})
}

// recordAll records o into the run's recorders and hands it to the
// caller's.
func (r *runner) recordAll(o outcome.Outcome) {
	r.res.Requests.Record(o)
	if r.live != nil {
		r.live.Record(o)
	}
	if r.observe != nil {
		r.observe(o)
	}
}

// iterate runs one closed-model iteration of VU vu: a request, then its
// think time.
func (r *runner) iterate(ctx context.Context, vus []*Worker, vu int) {
	if r.t.journeys != nil {
		r.iterateJourney(ctx, vu)
		return
	}
	local := (vu - r.seg.Index) / r.seg.Count
	w := vus[local]
	if w == nil {
		w = newPooledWorker(r.pool, r.clk, r.vars, r.t.Seed, vu)
		w.traceSample = r.t.TraceSample
		vus[local] = w
	}
	t := r.t
	if t.data != nil {
		w.Env.Row = t.data.Next(w.Env.Rand)
	}
	s := t.mix.Pick(w.Env.Rand)
	if w.Env.Iter == 0 && s.ThinkMax > 0 {
		// VUs that think start spread over one think time, as users
		// arrive, rather than all sending in the same instant: ten
		// thousand VUs would otherwise open ten thousand connections at
		// once that the steady state never needs.
		if !w.sleep(ctx, time.Duration(w.Env.Rand.Int64N(int64(s.ThinkMax)))) {
			return
		}
	}
	res := w.Send(s)
	r.record(s, time.Time{}, &res)
	end := res.Done
	if think := w.Think(s); think > 0 {
		if !w.sleep(ctx, think) {
			return // stopped while thinking: not a completed iteration
		}
		end = r.clk.Now()
	}
	r.res.Iters.Record(outcome.Outcome{Start: res.Sent, Latency: end.Sub(res.Sent)})
}

// record feeds one finished request into the recorders. In the open
// model latency runs from due, the scheduled time (corrected for
// coordinated omission), and the service time from the actual send; in
// the closed model (zero due) both run from the send. A request that
// found no free connection was never sent: it counts as dropped, with the
// generator's health, not as the service's failure.
func (r *runner) record(s *Step, due time.Time, res *StepResult) {
	o := outcome.Outcome{
		Start:    res.Sent,
		Latency:  res.Done.Sub(res.Sent),
		Status:   res.Status,
		BytesIn:  res.BytesIn,
		BytesOut: res.BytesOut,
		Class:    classify(s, res),
	}
	if o.Class == outcome.ClassDropped {
		r.noConn.Add(1)
		r.dropped.Add(1)
		if !due.IsZero() {
			o.Start = due
		}
		r.recordAll(o)
		r.byStep[s.idx].Record(o)
		for _, ts := range r.tagged {
			if ts.f.matches(s.idx, &o) {
				ts.set.Requests.Record(o)
			}
		}
		return
	}
	if !due.IsZero() {
		o.Start = due
		o.Latency = res.Done.Sub(due)
		if svc := res.Done.Sub(res.Sent); svc != o.Latency {
			o.ServiceTime = max(svc, 1)
		}
		lag := res.Sent.Sub(due)
		r.res.Lag.Record(outcome.Outcome{Start: due, Latency: lag})
		if lag > r.t.LateAfter {
			r.late.Add(1)
		}
	}
	r.recordAll(o)
	r.byStep[s.idx].Record(o)
	r.res.Phases.record(o.Start, &res.Phases)
	r.requests.Add(1)
	if o.Class.RequestFailed() {
		r.failed.Add(1)
	}
	if res.Traced {
		r.traces.note(s.Name, &res.TraceID, &o)
	}
	for i := range res.ChecksRun {
		c := checkOutcome(o.Start, res, i)
		r.res.Checks.Record(c)
		r.byCheck[s.idx][i].Record(c)
	}
	for _, ts := range r.tagged {
		if !ts.f.matches(s.idx, &o) {
			continue
		}
		ts.set.Requests.Record(o)
		if ts.set.Phases != nil {
			ts.set.Phases.record(o.Start, &res.Phases)
		}
		for i := range res.ChecksRun {
			ts.set.Checks.Record(checkOutcome(o.Start, res, i))
		}
	}
}

// checkOutcome is check i of a request that started at start: ClassOK
// when it passed, ClassCheck when it failed.
func checkOutcome(start time.Time, res *StepResult, i int) outcome.Outcome {
	c := outcome.Outcome{Start: start}
	if i < 64 && res.FailedChecks&(1<<i) != 0 {
		c.Class = outcome.ClassCheck
	}
	return c
}

// classify names what became of a request: a request that found no free
// connection as dropped; a transport error by its kind; a status the step
// does not expect (by default, as in k6's http_req_failed, one of 400 or
// more or below 200) as a status failure; then a failed check.
func classify(s *Step, res *StepResult) outcome.Class {
	switch {
	case res.Classified:
		return res.Class
	case errors.Is(res.Err, errNoConn):
		return outcome.ClassDropped
	case res.Err != nil:
		return outcome.Classify(res.Err)
	case !s.expects(res.Status):
		return outcome.ClassStatus
	case res.Failed():
		return outcome.ClassCheck
	}
	return outcome.ClassOK
}

// sample runs once a second until ctx ends: it records the active count,
// reports progress, and stops the load (through stop's cancel) when an
// abortOnFail threshold fails or a stress step breaks.
func (r *runner) sample(ctx, load context.Context, progress func(Progress)) {
	tick := r.clk.NewTimer(time.Second)
	defer tick.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-load.Done():
			return
		case <-tick.C():
		}
		n++
		now := r.clk.Now()
		r.res.addActive(now.Truncate(time.Second), int(r.active.Load()))
		r.res.Generator.Samples = append(r.res.Generator.Samples, r.health.sample(now.Truncate(time.Second)))
		if progress != nil {
			progress(r.progress(now))
		}
		if reason := r.res.abortReason(r.start, now); reason != "" {
			r.stop(reason)
		}
		// A stress step is judged a second after it ends, once its
		// requests are in; the first that fails is the knee, and the test
		// has found what it was for.
		for L := r.t.StepLength; L > 0 && r.nextStep < len(r.t.StepTargets) &&
			!now.Before(r.start.Add(time.Duration(r.nextStep+1)*L+time.Second)); r.nextStep++ {
			if st, ok := r.res.stressStep(r.nextStep, r.start.Add(time.Duration(r.nextStep+1)*L)); ok && !st.Passed {
				r.stop(fmt.Sprintf("knee: step %d (target %g) failed %s", st.Step, st.Target, strings.Join(st.Failed, ", ")))
				break
			}
		}
		tick.Reset(r.start.Add(time.Duration(n+1) * time.Second).Sub(r.clk.Now()))
	}
}

func (r *runner) stop(reason string) {
	r.stopOnce.Do(func() {
		r.res.Stopped = reason
		r.cancel()
	})
}

func (r *runner) progress(now time.Time) Progress {
	last := now.Truncate(time.Second).Add(-time.Second)
	w := r.res.Requests.Window(last, last.Add(time.Second))
	return Progress{
		Elapsed:  now.Sub(r.start),
		Duration: r.t.Duration(),
		Requests: r.requests.Load(),
		Failed:   r.failed.Load(),
		Dropped:  r.dropped.Load(),
		Late:     r.late.Load(),
		Active:   int(r.active.Load()),
		P99:      w.Latency.Quantile(0.99),
		RPS:      float64(w.Sent()),
	}
}
