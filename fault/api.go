package fault

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
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
	token := []byte(opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Toxiproxy refuses browsers so a web page cannot drive the API
		// through the user's browser; relia keeps that.
		if strings.HasPrefix(r.UserAgent(), "Mozilla/") {
			http.Error(w, "User agent not allowed", http.StatusForbidden)
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

// decodeProxy reads a proxy create body.
func decodeProxy(r io.Reader) (ProxyConfig, error) {
	var cfg ProxyConfig
	if err := json.NewDecoder(r).Decode(&cfg); err != nil {
		return cfg, ErrBadRequestBody.detail("%v", err)
	}
	return cfg, nil
}

// decodePopulate reads a populate body: a JSON array of proxies.
func decodePopulate(r io.Reader) ([]ProxyConfig, error) {
	var cfgs []ProxyConfig
	if err := json.NewDecoder(r).Decode(&cfgs); err != nil {
		return nil, ErrBadRequestBody.detail("%v", err)
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

// proxyUpdate is the body of a proxy update.
type proxyUpdate struct {
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

// decodeProxyUpdate reads a proxy update body; fields not named keep
// cur's values, as in Toxiproxy (whose clients send the whole proxy back).
func decodeProxyUpdate(r io.Reader, cur ProxyInfo) (proxyUpdate, error) {
	in := proxyUpdate{cur.Listen, cur.Upstream, cur.Enabled}
	if err := json.NewDecoder(r).Decode(&in); err != nil {
		return in, ErrBadRequestBody.detail("%v", err)
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
	if err := json.NewDecoder(r).Decode(&in); err != nil && !errors.Is(err, io.EOF) {
		return 0, ErrBadRequestBody.detail("%v", err)
	}
	if in.LeaseTTL == "" {
		return 0, nil
	}
	var spec toxicSpec
	if err := parseLeaseTTL(in.LeaseTTL, &spec); err != nil {
		return 0, err
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
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return ProcessFault{}, ErrBadRequestBody.detail("%v", err)
	}
	var spec toxicSpec
	if err := parseLeaseTTL(in.LeaseTTL, &spec); err != nil {
		return ProcessFault{}, err
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
