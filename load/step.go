package load

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/outcome"
)

// Step is one compiled request of a scenario: everything is parsed and
// resolved before load starts, so sending it only renders templates into
// reused buffers.
type Step struct {
	// Name labels the request in breakdowns and thresholds.
	Name    string
	Method  string
	URL     *Template // the base URL joined with the path template
	Headers []HeaderTemplate
	Body    *Template
	Checks  []Check
	// Extract sets variables from the JSON response (setup steps).
	Extract []Extraction
	// ThinkMin and ThinkMax bound a uniform pause after the request (closed
	// model); equal values pause a fixed time.
	ThinkMin, ThinkMax time.Duration
	// Weight is the request's share of the mix.
	Weight float64
	// Expected are the statuses that count as a success; empty means 200
	// to 399.
	Expected []int

	needsBody  bool
	ownTrace   bool // the request sets its own traceparent
	headerKeys [][]byte
	idx        int // position in the Test's mix, for per-name recording
	// journey and group are the journey and group (k6's "::cart") a
	// journey's request belongs to, for the tags thresholds split by.
	journey, group string
	grpc           *grpcStep // set when the request is a gRPC call (grpc.go)
}

// HeaderTemplate is a header whose value may hold template actions.
type HeaderTemplate struct {
	Key   string
	Value *Template
}

// Extraction copies the value at Path in a JSON response into a variable.
type Extraction struct {
	Var  string
	Slot int
	Path *JSONPath
}

// Prepare finishes a step after its fields are set; it checks them.
func (s *Step) Prepare() error {
	if s.Method == "" {
		s.Method = "GET"
	}
	if s.URL == nil {
		return fmt.Errorf("request %q has no URL", s.Name)
	}
	if s.ThinkMin < 0 || s.ThinkMax < s.ThinkMin {
		return fmt.Errorf("request %q: think time %s..%s: want 0 <= min <= max", s.Name, s.ThinkMin, s.ThinkMax)
	}
	if s.Weight < 0 {
		return fmt.Errorf("request %q: weight %v must be >= 0", s.Name, s.Weight)
	}
	s.headerKeys = s.headerKeys[:0]
	for _, h := range s.Headers {
		if h.Key == "" || h.Value == nil {
			return fmt.Errorf("request %q: a header needs a name and a value", s.Name)
		}
		s.headerKeys = append(s.headerKeys, []byte(h.Key))
	}
	s.ownTrace = s.hasHeader("traceparent")
	s.needsBody = len(s.Extract) > 0
	for i := range s.Checks {
		s.needsBody = s.needsBody || s.Checks[i].NeedsBody()
	}
	return nil
}

// StepResult is what one sent step produced.
type StepResult struct {
	Status            int
	Err               error
	Sent, Done        time.Time
	BytesIn, BytesOut int64
	// FailedChecks has bit i set when check i failed (the first 64).
	FailedChecks uint64
	// ChecksRun is how many checks ran (0 when the request failed).
	ChecksRun int
	// Phases are the parts of the request's time, as the client measured
	// them.
	Phases Phases
	// Traced is true when the request carried a traceparent; TraceID is
	// its trace id.
	Traced  bool
	TraceID [16]byte
	// Class is what became of the request when Classified is set (a gRPC
	// call, classified by its status code); otherwise the runner
	// classifies it from Err and Status.
	Class      outcome.Class
	Classified bool
}

// expects reports whether status answers the step as intended.
func (s *Step) expects(status int) bool {
	if len(s.Expected) == 0 {
		return status >= 200 && status < 400
	}
	return slices.Contains(s.Expected, status)
}

// Failed reports whether any check failed.
func (r *StepResult) Failed() bool { return r.FailedChecks != 0 }

// Worker sends steps: one per VU or open-model worker, never shared, so
// its variables and random source need no lock. The buffers a request is
// rendered into and the client's request and response objects are taken
// from a pool for the length of one Send, so ten thousand VUs that mostly
// think hold only as many of them as are sending.
type Worker struct {
	Env   Env
	src   *rand.PCG // Env.Rand's source, reseeded per open-model arrival
	clock clock.Clock
	pool  *sync.Pool  // of *sendState
	timer clock.Timer // for think time, made on first use and reused
	// traceSample is the share of requests sent with a traceparent.
	traceSample float64
	// hop, when set, is a journey's say over the next request: its URL
	// and method, its cookies, and whether a redirect will be followed
	// (journey_run.go); nil for requests of a mix.
	hop *hop
}

// sendState is what one request in flight needs.
type sendState struct {
	sess session
	req  wireRequest
	rep  wireReply
	resp Response
	hdrs [][]byte
	tp   [traceparentLen]byte
	grpc grpcSession
}

// statePool returns the pool of send states for tr.
func statePool(tr transport) *sync.Pool {
	return &sync.Pool{New: func() any { return &sendState{sess: tr.session()} }}
}

func newWorker(tr transport, clk clock.Clock, vars []string, seed uint64, vu int) *Worker {
	return newPooledWorker(statePool(tr), clk, vars, seed, vu)
}

func newPooledWorker(pool *sync.Pool, clk clock.Clock, vars []string, seed uint64, vu int) *Worker {
	w := &Worker{clock: clk, pool: pool}
	w.Env.Vars = append([]string(nil), vars...)
	w.src = rand.NewPCG(seed, uint64(vu))
	w.Env.Rand = rand.New(w.src)
	w.Env.VU = vu
	return w
}

// Send renders and sends one step and runs its checks and extractions.
func (w *Worker) Send(s *Step) StepResult {
	st := w.pool.Get().(*sendState)
	defer w.pool.Put(st)
	if s.grpc != nil {
		return w.sendGRPC(s, st)
	}
	r := &st.req
	r.method = s.Method
	st.rep.heads = nil
	if h := w.hop; h != nil {
		r.method = h.method
		r.url = append(r.url[:0], h.url...)
		st.rep.heads = &h.heads
	} else {
		r.url = s.URL.Append(r.url[:0], &w.Env)
	}
	if cap(r.headers) < len(s.Headers)+1 { // room for a traceparent
		r.headers = make([]headerPair, len(s.Headers), len(s.Headers)+1)
		st.hdrs = make([][]byte, len(s.Headers))
	}
	r.headers = r.headers[:len(s.Headers)]
	for i, h := range s.Headers {
		st.hdrs[i] = h.Value.Append(st.hdrs[i][:0], &w.Env)
		r.headers[i] = headerPair{key: s.headerKeys[i], value: st.hdrs[i]}
	}
	var res StepResult
	if !s.ownTrace && sampleTrace(w.traceSample) {
		res.Traced, res.TraceID = true, newTraceparent(&st.tp)
		r.headers = append(r.headers, headerPair{key: traceparentKey, value: st.tp[:]})
	}
	if h := w.hop; h != nil && len(h.cookie) > 0 {
		r.headers = append(r.headers, headerPair{key: cookieKey, value: h.cookie})
	}
	r.body = r.body[:0]
	if s.Body != nil && (w.hop == nil || !w.hop.noBody) {
		r.body = s.Body.Append(r.body, &w.Env)
	}
	res.Sent = w.clock.Now()
	err := st.sess.do(r, s.needsBody, &st.rep)
	res.Done = w.clock.Now()
	res.BytesIn, res.BytesOut = st.rep.bytesIn, st.rep.bytesOut
	res.Phases = st.rep.phases
	w.Env.Iter++
	if err != nil {
		res.Err = protocolError(err, res.BytesIn)
		return res
	}
	res.Status = st.rep.status
	return w.judge(s, &res, st, st.rep.body)
}

// judge runs a step's checks and extractions on a response that arrived.
func (w *Worker) judge(s *Step, res *StepResult, st *sendState, body []byte) StepResult {
	if h := w.hop; h != nil && h.follows(res.Status) {
		return *res // a redirect to follow: the final response is judged
	}
	st.resp = Response{Status: res.Status, Latency: res.Done.Sub(res.Sent), Body: body}
	for i := range s.Checks {
		res.ChecksRun++
		if !s.Checks[i].Holds(&st.resp) && i < 64 {
			res.FailedChecks |= 1 << i
		}
	}
	for _, x := range s.Extract {
		doc, err := st.resp.JSON()
		if err != nil {
			res.Err = fmt.Errorf("extracting %s from the %d response: %w", x.Var, res.Status, err)
			return *res
		}
		v, ok := x.Path.Lookup(doc)
		if !ok {
			res.Err = fmt.Errorf("extracting %s: %s not found in the %d response", x.Var, x.Path, res.Status)
			return *res
		}
		w.Env.Vars[x.Slot] = JSONText(v)
	}
	st.resp = Response{}
	return *res
}

// protocolError marks err as the peer breaking HTTP when the peer sent
// bytes and the exchange still failed for none of the reasons Classify
// knows (a timeout, a reset, TLS ...): what arrived could not be read as a
// response, so the request is a protocol failure (outcome.ClassProtocol),
// not an unexplained "other".
func protocolError(err error, bytesIn int64) error {
	if bytesIn > 0 && outcome.Classify(err) == outcome.ClassOther {
		return fmt.Errorf("%w: %w", outcome.ErrProtocol, err)
	}
	return err
}

// Think returns the step's pause after a request.
func (w *Worker) Think(s *Step) time.Duration {
	if s.ThinkMax <= s.ThinkMin {
		return s.ThinkMin
	}
	return s.ThinkMin + time.Duration(w.Env.Rand.Int64N(int64(s.ThinkMax-s.ThinkMin)+1))
}

// sleep waits d or until ctx ends, reporting whether d passed. The VU's
// one timer is reused, so thinking allocates nothing.
func (w *Worker) sleep(ctx context.Context, d time.Duration) bool {
	if w.timer == nil {
		w.timer = w.clock.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C():
		return true
	case <-ctx.Done():
		w.timer.Stop()
		return false
	}
}

// Mix picks steps by weight with one random draw and a binary search.
type Mix struct {
	steps []*Step
	cum   []float64
}

// NewMix builds a mix; at least one step must have a positive weight.
func NewMix(steps []*Step) (*Mix, error) {
	m := &Mix{steps: steps}
	total := 0.0
	for _, s := range steps {
		total += s.Weight
		m.cum = append(m.cum, total)
	}
	if total <= 0 {
		return nil, fmt.Errorf("no request has a positive weight")
	}
	return m, nil
}

// Pick returns a step chosen by weight.
func (m *Mix) Pick(r *rand.Rand) *Step {
	if len(m.steps) == 1 {
		return m.steps[0]
	}
	x := r.Float64() * m.cum[len(m.cum)-1]
	lo, hi := 0, len(m.cum)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if m.cum[mid] > x {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return m.steps[lo]
}
