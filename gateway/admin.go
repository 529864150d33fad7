package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MinReadyShare is the share of an upstream's targets that must be
// available for /readyz to report ready.
const MinReadyShare = 0.5

// defaultAdminNote follows the admin address in errors when the config
// left it out.
const defaultAdminNote = `the default when spec.admin.address is left out; "off" turns the admin API off`

// startAdmin opens the admin API listener of st's config; the caller
// holds g.mu.
func (g *Gateway) startAdmin(st *state) error {
	addr, dflt := st.eff.Spec.Admin.Address, ""
	if addr == "off" {
		return nil
	}
	if st.cfg.Spec.Admin.Address == "" {
		dflt = defaultAdminNote
	}
	var token []byte
	if f := st.eff.Spec.Admin.TokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("reading admin token: %w", err)
		}
		token = []byte(strings.TrimSpace(string(b)))
		if len(token) < 16 {
			return fmt.Errorf("admin token in %s is shorter than 16 characters", f)
		}
	}
	ln, err := listen(st.eff, "spec.admin.address", addr, dflt)
	if err != nil {
		return err
	}
	g.adminAddr = ln.Addr().String()
	g.admin = &http.Server{
		Handler:           g.adminHandler(token),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          nil,
	}
	g.bg.Add(1)
	go func() { // exits when Shutdown closes the server
		defer g.bg.Done()
		if err := g.admin.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("admin listener stopped", "error", err)
		}
	}()
	return nil
}

// adminHandler serves the admin API. With a token, every endpoint but
// the probes (/healthz, /readyz) requires it as a bearer token, compared
// in constant time.
func (g *Gateway) adminHandler(token []byte) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", g.readyz)
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) {
		st := g.state.Load()
		doc, err := st.configJSON()
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"reason": "internal", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Generation uint64          `json:"generation"`
			Loaded     time.Time       `json:"loaded"`
			Config     json.RawMessage `json:"config"`
		}{st.gen, st.loaded, doc})
	})
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, g.Routes())
	})
	mux.HandleFunc("GET /ai/usage", g.ServeAIUsage)
	mux.HandleFunc("GET /upstreams", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, g.Upstreams())
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := g.ReloadFile(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"reason": "invalid_config", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"generation": g.state.Load().gen})
	})
	for _, e := range g.adminMore {
		mux.Handle(e.pattern, e.h)
	}
	if g.calls != nil {
		for _, m := range g.calls.admin {
			for _, p := range m.patterns {
				mux.Handle(p, m.h)
			}
		}
	}
	var h http.Handler = mux
	if len(token) > 0 {
		want := append([]byte("Bearer "), token...)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" &&
				subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="relia-admin"`)
				writeJSON(w, http.StatusUnauthorized, map[string]string{"reason": "unauthenticated", "policy": "admin"})
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	return refuseBrowsers(h)
}

// adminEndpoint is an endpoint HandleAdmin added to the admin API.
type adminEndpoint struct {
	pattern string
	h       http.Handler
}

// HandleAdmin adds an endpoint to the admin API (pattern as
// http.ServeMux reads it), behind the API's token and its refusal of
// writes a browser sends for another site. It takes effect at Start.
func (g *Gateway) HandleAdmin(pattern string, h http.Handler) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.adminMore = append(g.adminMore, adminEndpoint{pattern, h})
}

// refuseBrowsers refuses the admin API's writes (any method but GET, HEAD
// and OPTIONS) when a browser sends them on behalf of a page: a page from
// any site could otherwise POST /reload to a gateway on the user's
// loopback, which a token-less admin API would obey. Browsers mark such
// requests with Origin and Sec-Fetch-Site; curl, relia and scripts send
// neither, or a same-origin Origin.
func refuseBrowsers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		site := r.Header.Get("Sec-Fetch-Site")
		origin := r.Header.Get("Origin")
		crossSite := site != "" && site != "same-origin" && site != "none"
		if !crossSite && origin != "" {
			u, err := url.Parse(origin)
			crossSite = err != nil || u.Host != r.Host
		}
		if crossSite {
			writeJSON(w, http.StatusForbidden, map[string]string{"reason": "cross_origin", "policy": "admin",
				"message": "the admin API's writes do not take requests a browser sends for another site"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// TargetStatus is one target's state as the admin API reports it.
type TargetStatus struct {
	Address  string `json:"address"`
	Healthy  bool   `json:"healthy"`
	ActiveUp bool   `json:"active_up"`
	Ejected  bool   `json:"ejected"`
	Breaker  string `json:"breaker"`
	InFlight int64  `json:"in_flight"`
	// LatencyEWMAMs is the latency average the least-request balancer uses.
	LatencyEWMAMs float64 `json:"latency_ewma_ms"`
}

// UpstreamStatus is one pool's state as the admin API reports it.
type UpstreamStatus struct {
	Name         string         `json:"name"`
	Balance      Balance        `json:"balance"`
	HealthyShare float64        `json:"healthy_share"`
	Targets      []TargetStatus `json:"targets"`
}

// Upstreams reports every pool's targets: health, ejection, breaker state.
func (g *Gateway) Upstreams() []UpstreamStatus {
	st := g.state.Load()
	out := make([]UpstreamStatus, 0, len(st.poolList))
	for _, p := range st.poolList {
		us := UpstreamStatus{Name: p.name, Balance: p.cfg.Balance, HealthyShare: p.healthyShare()}
		now := p.clock.Now().UnixNano()
		for _, t := range p.targets {
			ts := TargetStatus{Address: t.addr, Healthy: t.available(p.clock.Now), ActiveUp: t.activeUp.Load(),
				InFlight: t.inflight.Load(), Breaker: "none", LatencyEWMAMs: ewmaMs(t)}
			if u := t.ejectedUntil.Load(); u != 0 && now < u {
				ts.Ejected = true
			}
			if t.breaker != nil {
				ts.Breaker = t.breaker.State().String()
			}
			us.Targets = append(us.Targets, ts)
		}
		out = append(out, us)
	}
	return out
}

func (g *Gateway) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ready := true
	st := g.state.Load()
	for _, p := range st.poolList {
		share := p.healthyShare()
		checks["upstream:"+p.name] = fmt.Sprintf("%.0f%% available", share*100)
		if share < MinReadyShare {
			ready = false
		}
	}
	if !st.redisReady(r.Context(), checks) {
		ready = false
	}
	// A key set that was fetched once keeps verifying tokens when a
	// refresh fails, so only one never fetched makes the gateway unready.
	for _, ks := range st.keySets {
		switch err := ks.Status(); {
		case err == nil:
			checks["jwks:"+ks.URL()] = "ok"
		case ks.Len() > 0:
			checks["jwks:"+ks.URL()] = "stale, last refresh failed: " + err.Error()
		default:
			checks["jwks:"+ks.URL()] = err.Error()
			ready = false
		}
	}
	if g.opts.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := g.opts.Ready(ctx); err != nil {
			checks["dependencies"] = err.Error()
			ready = false
		} else {
			checks["dependencies"] = "ok"
		}
	}
	status, word := http.StatusOK, "ready"
	if !ready {
		status, word = http.StatusServiceUnavailable, "not_ready"
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
