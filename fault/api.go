package fault

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/buildinfo"
)

// maxBody bounds a control request's body; populate files are small.
const maxBody = 1 << 20

// HandlerOptions configure the control API.
type HandlerOptions struct {
	// Token, when set, must come with every request as
	// "Authorization: Bearer <token>". relia fault serve requires one when
	// it listens on an address other than loopback.
	Token string
}

// Handler serves the control API: Toxiproxy's HTTP API (the same paths,
// JSON and status codes, so toxiproxy-cli and Toxiproxy's client libraries
// work unchanged) plus relia's extensions beside it:
//
//	POST /proxies/{proxy}/toxics/{toxic}/renew  renew a lease ({"lease_ttl": "30s"} optional)
//	GET  /relia/status                          the seed, version and launched processes
//	GET  /relia/process-faults                  active process faults
//	POST /relia/process-faults                  start one (ProcessFault JSON plus lease_ttl)
//	POST /relia/process-faults/{name}/renew     renew its lease
//	DELETE /relia/process-faults/{name}         end it now
//
// and lease_ttl in a toxic's create or update body.
func (s *Server) Handler(opts HandlerOptions) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reset", s.handleReset)
	mux.HandleFunc("GET /proxies", s.handleProxyIndex)
	mux.HandleFunc("POST /proxies", s.handleProxyCreate)
	mux.HandleFunc("POST /populate", s.handlePopulate)
	mux.HandleFunc("GET /proxies/{proxy}", s.handleProxyShow)
	mux.HandleFunc("POST /proxies/{proxy}", s.handleProxyUpdate)
	mux.HandleFunc("DELETE /proxies/{proxy}", s.handleProxyDelete)
	mux.HandleFunc("GET /proxies/{proxy}/toxics", s.handleToxicIndex)
	mux.HandleFunc("POST /proxies/{proxy}/toxics", s.handleToxicCreate)
	mux.HandleFunc("GET /proxies/{proxy}/toxics/{toxic}", s.handleToxicShow)
	mux.HandleFunc("POST /proxies/{proxy}/toxics/{toxic}", s.handleToxicUpdate)
	mux.HandleFunc("DELETE /proxies/{proxy}/toxics/{toxic}", s.handleToxicDelete)
	mux.HandleFunc("POST /proxies/{proxy}/toxics/{toxic}/renew", s.handleToxicRenew)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain;charset=utf-8")
		io.WriteString(w, buildinfo.String())
	})
	mux.HandleFunc("GET /relia/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /relia/process-faults", s.processOnly(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.process.Active())
	}))
	mux.HandleFunc("POST /relia/process-faults", s.processOnly(s.handleProcessStart))
	mux.HandleFunc("POST /relia/process-faults/{name}/renew", s.processOnly(func(w http.ResponseWriter, r *http.Request) {
		ttl, err := decodeRenew(r.Body)
		if err == nil {
			err = s.process.Renew(r.PathValue("name"), ttl)
		}
		reply(w, http.StatusOK, s.processInfo(r.PathValue("name")), err)
	}))
	mux.HandleFunc("DELETE /relia/process-faults/{name}", s.processOnly(func(w http.ResponseWriter, r *http.Request) {
		if err := s.process.Stop(r.PathValue("name")); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	// What no route serves is answered in the API's own shape too.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"GET", "POST", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, ErrMethodNotAllowed.detail("%s %s takes %s", r.Method, shorten(r.URL.Path), strings.Join(allow, ", ")))
			return
		}
		writeError(w, ErrNoEndpoint.detail("%s %s", r.Method, shorten(r.URL.Path)))
	})
	token := []byte(opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Toxiproxy refuses browsers so a web page cannot drive the API
		// through the user's browser; relia keeps that.
		if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
			writeError(w, ErrBrowser)
			return
		}
		if len(token) > 0 {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
				writeError(w, ErrUnauthorized)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(data)
}

// writeError renders every error in one place, in Toxiproxy's shape; an
// error without a status is a 500, as in Toxiproxy.
func writeError(w http.ResponseWriter, err error) {
	var ae *APIError
	if !errors.As(err, &ae) {
		ae = &APIError{Message: err.Error(), Status: http.StatusInternalServerError}
	}
	data, _ := json.Marshal(ae)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(ae.Status)
	w.Write(data)
	w.Write([]byte("\n"))
}

func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) handleReset(w http.ResponseWriter, _ *http.Request) {
	if err := s.Reset(); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleProxyIndex(w http.ResponseWriter, _ *http.Request) {
	out := map[string]ProxyInfo{}
	for _, p := range s.Proxies() {
		out[p.Name] = p
	}
	writeJSON(w, http.StatusOK, out)
}

// proxyBody is a proxy as a create or populate request sends it.
type proxyBody struct {
	ProxyConfig
	// Toxics is there because Toxiproxy's clients send a proxy with its
	// toxics as they hold them (none, on create). A proxy is created
	// without toxics, so only an empty list is taken.
	Toxics json.RawMessage `json:"toxics"`
}

func (b proxyBody) check(where string) error {
	switch strings.TrimSpace(string(b.Toxics)) {
	case "", "null", "[]":
		return nil
	}
	return fmt.Errorf("proxy %s%s: a proxy is created without toxics; add them with POST /proxies/{proxy}/toxics", quoteName(b.Name), where)
}

// decodeProxy reads a proxy create body.
func decodeProxy(r io.Reader) (ProxyConfig, error) {
	var b proxyBody
	if err := decodeJSON(r, &b, "field"); err != nil {
		return ProxyConfig{}, ErrBadRequestBody.detail("proxy: %v", err)
	}
	if err := b.check(""); err != nil {
		return ProxyConfig{}, ErrBadRequestBody.detail("%v", err)
	}
	return b.ProxyConfig, nil
}

// ReadProxies reads a JSON list of proxies as POST /populate and relia
// fault serve --config take it: Toxiproxy's fields and relia's mode and
// max_triggered, nothing else. Server.Populate checks the values.
func ReadProxies(r io.Reader) ([]ProxyConfig, error) {
	var bs []proxyBody
	if err := decodeJSON(r, &bs, "field"); err != nil {
		return nil, fmt.Errorf("a JSON list of proxies: %w", err)
	}
	cfgs := make([]ProxyConfig, len(bs))
	for i, b := range bs {
		if err := b.check(fmt.Sprintf(" (proxy %d)", i+1)); err != nil {
			return nil, err
		}
		cfgs[i] = b.ProxyConfig
	}
	return cfgs, nil
}

// decodePopulate reads a populate body: a JSON array of proxies.
func decodePopulate(r io.Reader) ([]ProxyConfig, error) {
	cfgs, err := ReadProxies(r)
	if err != nil {
		return nil, ErrBadRequestBody.detail("populate: %v", err)
	}
	return cfgs, nil
}

func (s *Server) handleProxyCreate(w http.ResponseWriter, r *http.Request) {
	cfg, err := decodeProxy(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.CreateProxy(cfg)
	reply(w, http.StatusCreated, info, err)
}

func (s *Server) handlePopulate(w http.ResponseWriter, r *http.Request) {
	cfgs, err := decodePopulate(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	infos, err := s.Populate(cfgs)
	if infos == nil {
		infos = []ProxyInfo{}
	}
	// Like Toxiproxy, a failed populate still lists the proxies it made,
	// beside the error.
	body := struct {
		*APIError
		Proxies []ProxyInfo `json:"proxies"`
	}{Proxies: infos}
	status := http.StatusCreated
	if err != nil {
		if !errors.As(err, &body.APIError) {
			body.APIError = &APIError{Message: err.Error(), Status: http.StatusInternalServerError}
		}
		status = body.APIError.Status
	}
	writeJSON(w, status, body)
}

func (s *Server) handleProxyShow(w http.ResponseWriter, r *http.Request) {
	info, err := s.Proxy(r.PathValue("proxy"))
	reply(w, http.StatusOK, info, err)
}

// proxyUpdate is the body of a proxy update. Toxiproxy's clients send the
// whole proxy back as they read it, so its name, mode and toxics may come
// too: the name and mode unchanged, the toxics ignored.
type proxyUpdate struct {
	Name     string          `json:"name"`
	Listen   string          `json:"listen"`
	Upstream string          `json:"upstream"`
	Enabled  bool            `json:"enabled"`
	Mode     string          `json:"mode"`
	Toxics   json.RawMessage `json:"toxics"`
}

// decodeProxyUpdate reads a proxy update body; fields not named keep
// cur's values, as in Toxiproxy.
func decodeProxyUpdate(r io.Reader, cur ProxyInfo) (proxyUpdate, error) {
	in := proxyUpdate{Name: cur.Name, Listen: cur.Listen, Upstream: cur.Upstream, Enabled: cur.Enabled, Mode: cur.Mode}
	if err := decodeJSON(r, &in, "field"); err != nil {
		return in, ErrBadRequestBody.detail("proxy %s: %v", quoteName(cur.Name), err)
	}
	switch {
	case in.Name != cur.Name:
		return in, ErrBadRequestBody.detail("proxy %s: a proxy cannot be renamed (got name %s)", quoteName(cur.Name), quoteName(in.Name))
	case in.Mode != cur.Mode:
		return in, ErrBadRequestBody.detail("proxy %s: its mode %s cannot change to %s; delete it and create another", quoteName(cur.Name), cur.Mode, quoteName(in.Mode))
	}
	return in, checkAddrs(in.Listen, in.Upstream, "")
}

func (s *Server) handleProxyUpdate(w http.ResponseWriter, r *http.Request) {
	cur, err := s.Proxy(r.PathValue("proxy"))
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := decodeProxyUpdate(r.Body, cur)
	if err != nil {
		writeError(w, err)
		return
	}
	info, err := s.UpdateProxy(cur.Name, in.Listen, in.Upstream, in.Enabled)
	reply(w, http.StatusOK, info, err)
}

func (s *Server) handleProxyDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.DeleteProxy(r.PathValue("proxy")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleToxicIndex(w http.ResponseWriter, r *http.Request) {
	ts, err := s.Toxics(r.PathValue("proxy"))
	reply(w, http.StatusOK, ts, err)
}

// handleToxicCreate answers 200, not 201: Toxiproxy does, and its clients
// check for exactly that.
func (s *Server) handleToxicCreate(w http.ResponseWriter, r *http.Request) {
	t, err := s.AddToxic(r.PathValue("proxy"), r.Body)
	reply(w, http.StatusOK, t, err)
}

func (s *Server) handleToxicShow(w http.ResponseWriter, r *http.Request) {
	t, err := s.Toxic(r.PathValue("proxy"), r.PathValue("toxic"))
	reply(w, http.StatusOK, t, err)
}

func (s *Server) handleToxicUpdate(w http.ResponseWriter, r *http.Request) {
	t, err := s.UpdateToxic(r.PathValue("proxy"), r.PathValue("toxic"), r.Body)
	reply(w, http.StatusOK, t, err)
}

func (s *Server) handleToxicDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.RemoveToxic(r.PathValue("proxy"), r.PathValue("toxic")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// decodeRenew reads a renew body; an empty body renews by the toxic's TTL.
func decodeRenew(r io.Reader) (time.Duration, error) {
	var in struct {
		LeaseTTL string `json:"lease_ttl"`
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, ErrBadRequestBody.detail("renewal: %v", err)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := decodeJSONBytes(data, &in, "field"); err != nil {
			return 0, ErrBadRequestBody.detail("renewal: %v", err)
		}
	}
	if in.LeaseTTL == "" {
		return 0, nil
	}
	var spec toxicSpec
	if err := parseLeaseTTL(in.LeaseTTL, &spec); err != nil {
		return 0, err
	}
	if spec.ttlMarked && spec.ttl == 0 {
		return 0, ErrBadRequestBody.detail("a renewal takes a lease_ttl, not %q (remove the fault to end it, or update it with lease_ttl %q)", NoLease, NoLease)
	}
	return spec.ttl, nil
}

func (s *Server) handleToxicRenew(w http.ResponseWriter, r *http.Request) {
	ttl, err := decodeRenew(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	t, err := s.RenewToxic(r.PathValue("proxy"), r.PathValue("toxic"), ttl)
	reply(w, http.StatusOK, t, err)
}

// ErrProcessFaultsDisabled answers process fault requests on a server that
// does not allow them.
var ErrProcessFaultsDisabled = &APIError{"process faults are disabled on this server (relia fault serve --allow-process-faults)", http.StatusForbidden}

func (s *Server) processOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.allowProcess {
			writeError(w, ErrProcessFaultsDisabled)
			return
		}
		h(w, r)
	}
}

func (s *Server) processInfo(name string) *ProcessFaultInfo {
	for _, pf := range s.process.Active() {
		if pf.Name == name {
			return &pf
		}
	}
	return nil
}

// decodeProcessFault reads a process fault request.
func decodeProcessFault(r io.Reader) (ProcessFault, error) {
	var in struct {
		ProcessFault
		LeaseTTL string `json:"lease_ttl"`
	}
	if err := decodeJSON(r, &in, "field"); err != nil {
		return ProcessFault{}, ErrBadRequestBody.detail("process fault: %v", err)
	}
	var spec toxicSpec
	if err := parseLeaseTTL(in.LeaseTTL, &spec); err != nil {
		return ProcessFault{}, err
	}
	if spec.ttlMarked && spec.ttl == 0 {
		return ProcessFault{}, ErrBadProcessFault.detail("process faults always have a lease; lease_ttl %q is for toxics", NoLease)
	}
	in.ProcessFault.TTL = spec.ttl
	return in.ProcessFault, nil
}

func (s *Server) handleProcessStart(w http.ResponseWriter, r *http.Request) {
	f, err := decodeProcessFault(r.Body)
	if err == nil {
		err = s.process.Start(f)
	}
	reply(w, http.StatusOK, s.processInfo(f.Name), err)
}
