package load

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// cookieKey is the request field a user's cookies go out in.
var cookieKey = []byte("Cookie")

// errTooManyRedirects fails a request redirected more often than its
// journey follows.
var errTooManyRedirects = errors.New("too many redirects")

// hop is a journey's say over the request a Worker sends next: the URL
// and method (a redirect's target), the user's cookies for it, and how
// many more redirects may be followed; the response's Set-Cookie and
// Location fields come back in heads.
type hop struct {
	method string
	url    []byte
	noBody bool
	cookie []byte
	left   int // redirects that may still be followed
	heads  respHeads
}

// follows reports whether a response with this status will be followed
// rather than judged.
func (h *hop) follows(status int) bool {
	return h.left > 0 && isRedirect(status) && len(h.heads.location) > 0
}

// isRedirect reports whether status is one a client follows.
func isRedirect(status int) bool {
	switch status {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// user is one virtual user of a journey test: its worker (variables,
// random source, data row), its cookie jar, which journeys' setups it
// has run, and the status of its last response, which if: reads.
type user struct {
	w     *Worker
	jar   *cookieJar
	setup []bool // by journey
	last  int
	hop   hop
}

// newUser makes a user whose data row is row n of the data file (the
// VU's number in the closed model, the arrival's in the open one), so
// each user logs in as its own row and a split test picks the rows the
// whole test would.
func (r *runner) newUser(w *Worker, n uint64) *user {
	u := &user{w: w, setup: make([]bool, len(r.t.journeys)), jar: newCookieJar(r.t.maxCookies, r.t.maxCookieBytes)}
	w.hop = &u.hop
	u.reset(r.t, n)
	return u
}

// reset makes u a fresh user: no cookies, the scenario's variables, row
// n of the data file.
func (u *user) reset(t *Test, n uint64) {
	u.jar.reset()
	clear(u.setup)
	u.last = 0
	if d := t.data; d != nil {
		if d.order == DataRandom {
			u.w.Env.Row = d.Next(u.w.Env.Rand)
		} else {
			u.w.Env.Row = d.rows[n%uint64(len(d.rows))]
		}
	}
}

// journeyMix picks journeys by weight.
type journeyMix struct {
	journeys []*Journey
	cum      []float64
}

func newJourneyMix(js []*Journey) *journeyMix {
	m := &journeyMix{journeys: js}
	total := 0.0
	for _, j := range js {
		total += j.Weight
		m.cum = append(m.cum, total)
	}
	return m
}

func (m *journeyMix) pick(rnd *rand.Rand) *Journey {
	if len(m.journeys) == 1 {
		return m.journeys[0]
	}
	x := rnd.Float64() * m.cum[len(m.cum)-1]
	for i, c := range m.cum {
		if c > x {
			return m.journeys[i]
		}
	}
	return m.journeys[len(m.journeys)-1]
}

// openJourneyWorker makes the function of one open-model worker of a
// journey test: every arrival is a new user that walks one journey, its
// length measured from the arrival's scheduled time.
func (r *runner) openJourneyWorker(id int) func(context.Context, Arrival) {
	w := newPooledWorker(r.pool, r.clk, r.vars, r.t.Seed, id)
	w.traceSample = r.t.TraceSample
	u := r.newUser(w, 0)
	t := r.t
	return func(ctx context.Context, a Arrival) {
		w.src.Seed(t.Seed, a.N)
		w.Env.Iter = a.N
		copy(w.Env.Vars, r.vars)
		u.reset(t, a.N)
		j := t.jmix.pick(w.Env.Rand)
		if n := r.active.Add(1); n > r.peakActive.Load() {
			r.notePeak(n)
		}
		r.walk(ctx, u, j, a.Due)
		r.active.Add(-1)
	}
}

// iterateJourney runs one closed-model iteration of VU vu: one journey
// (after the user's setup, the first time), then the next.
func (r *runner) iterateJourney(ctx context.Context, vu int) {
	local := (vu - r.seg.Index) / r.seg.Count
	u := r.users[local]
	if u == nil {
		w := newPooledWorker(r.pool, r.clk, r.vars, r.t.Seed, vu)
		w.traceSample = r.t.TraceSample
		u = r.newUser(w, uint64(vu))
		r.users[local] = u
	}
	r.walk(ctx, u, r.t.jmix.pick(u.w.Env.Rand), time.Time{})
}

// walkState is one walk of a journey: when it started, whether its first
// request is still to be sent (it carries the open model's schedule),
// and the first failure.
type walkState struct {
	due    time.Time
	failed outcome.Class
	broken bool // a request failed: the journey stops
}

// walk runs journey j for user u and records it: in the open model (due
// set) its length runs from due, so a slow service cannot hide in the
// time users wait to arrive; in the closed model from the first send. A
// journey cut short by the end of the run is not recorded.
func (r *runner) walk(ctx context.Context, u *user, j *Journey, due time.Time) {
	start := due
	if start.IsZero() {
		start = r.clk.Now()
	}
	ws := &walkState{due: due}
	ok := true
	if !u.setup[j.idx] {
		ok = r.steps(ctx, u, j, j.Setup, ws)
		u.setup[j.idx] = ok && !ws.broken
	}
	if ok && !ws.broken {
		ok = r.steps(ctx, u, j, j.Steps, ws)
	}
	if !ok {
		return // stopped by the end of the run
	}
	end := r.clk.Now()
	o := outcome.Outcome{Start: start, Latency: max(end.Sub(start), 1), Class: ws.failed}
	r.res.Journeys.record(j.Name, o)
	if r.res.Iters != nil {
		r.res.Iters.Record(outcome.Outcome{Start: start, Latency: o.Latency})
	}
}

// steps runs steps in order; it returns false when ctx ended the walk.
func (r *runner) steps(ctx context.Context, u *user, j *Journey, steps []*JourneyStep, ws *walkState) bool {
	for _, js := range steps {
		if ws.broken {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if js.If != nil && !js.If.holds(u.last, u.w.Env.Vars) {
			continue
		}
		switch {
		case js.Request != nil:
			r.request(u, j, js, ws)
		case js.Group != "":
			gstart := r.clk.Now()
			if !ws.due.IsZero() {
				gstart = ws.due // the group opens the journey: it waited too
			}
			before := ws.failed
			if !r.steps(ctx, u, j, js.Steps, ws) {
				return false
			}
			class := outcome.ClassOK
			if ws.failed != before {
				class = ws.failed
			}
			end := r.clk.Now()
			r.res.Journeys.recordGroup(js.Group, outcome.Outcome{Start: gstart, Latency: max(end.Sub(gstart), 1), Class: class})
		case js.Loop > 0:
			for range js.Loop {
				if !r.steps(ctx, u, j, js.Steps, ws) {
					return false
				}
				if ws.broken {
					break
				}
			}
		}
		if think := thinkTime(u.w, js.ThinkMin, js.ThinkMax); think > 0 && !ws.broken {
			if !u.w.sleep(ctx, think) {
				return false
			}
		}
	}
	return true
}

// thinkTime draws a pause between lo and hi.
func thinkTime(w *Worker, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(w.Env.Rand.Int64N(int64(hi-lo)+1))
}

// request sends one request of a journey with the user's cookies,
// following redirects as the step allows; every response, redirects
// included, is a request of its own in the results, as k6 counts them.
// The first request of an open-model journey is measured from the
// arrival's due time.
func (r *runner) request(u *user, j *Journey, js *JourneyStep, ws *walkState) {
	s, w, h := js.Request, u.w, &u.hop
	h.method, h.noBody = s.Method, false
	h.url = s.URL.Append(h.url[:0], &w.Env)
	for redirects := 0; ; redirects++ {
		h.left = js.MaxRedirects - redirects
		target, err := url.Parse(string(h.url))
		if err != nil {
			target = nil
		}
		h.cookie = h.cookie[:0]
		if j.Cookies && target != nil {
			for i, c := range u.jar.Cookies(target) {
				if i > 0 {
					h.cookie = append(h.cookie, "; "...)
				}
				h.cookie = append(h.cookie, c.Name...)
				h.cookie = append(h.cookie, '=')
				h.cookie = append(h.cookie, c.Value...)
			}
		}
		res := w.Send(s)
		if res.Err == nil && j.Cookies && target != nil && len(h.heads.setCookie) > 0 {
			cookies := make([]*http.Cookie, 0, len(h.heads.setCookie))
			for _, line := range h.heads.setCookie {
				if c, err := http.ParseSetCookie(string(line)); err == nil {
					cookies = append(cookies, c)
				}
			}
			if n := u.jar.set(target, cookies, r.clk.Now()); n > 0 {
				atomic.AddInt64(&r.res.Journeys.CookiesDropped, int64(n))
			}
		}
		follow := res.Err == nil && h.follows(res.Status)
		var next *url.URL
		if follow && target != nil {
			next, err = target.Parse(string(h.heads.location))
			follow = err == nil && (next.Scheme == "http" || next.Scheme == "https")
		}
		switch {
		case follow:
			res.Class, res.Classified = outcome.ClassOK, true
		case res.Err == nil && js.MaxRedirects > 0 && h.left <= 0 && isRedirect(res.Status) && len(h.heads.location) > 0:
			res.Err = errTooManyRedirects
			res.Class, res.Classified = outcome.ClassStatus, true
		}
		r.record(s, ws.due, &res)
		ws.due = time.Time{}
		if !follow {
			u.last = res.Status
			if c := classify(s, &res); c != outcome.ClassOK {
				if ws.failed == outcome.ClassOK {
					ws.failed = c
				}
				ws.broken = ws.broken || c != outcome.ClassCheck
			}
			return
		}
		if res.Status == 303 || (res.Status == 301 || res.Status == 302) && h.method == "POST" {
			h.method, h.noBody = "GET", true
		}
		h.url = append(h.url[:0], next.String()...)
	}
}
