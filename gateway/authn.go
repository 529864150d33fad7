package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
	"github.com/relia-dev/relia/internal/h1"
)

// The request is what gateway/auth and gateway/cache read fields from.
var (
	_ auth.HeaderGetter = (*request)(nil)
	_ headerSource      = (*request)(nil)
)

// authenticators is a config generation's authentication: one
// auth.Authenticator per JWT issuer (each also checking API keys), so that
// a token is verified under the keys and claims of the issuer it names.
type authenticators struct {
	first    *auth.Authenticator // API keys, and the only issuer's tokens
	byIssuer map[string]*auth.Authenticator
}

// remoteKeySets holds the gateway's remote JWKS, one per URL and refresh
// interval, shared by config generations so that a reload neither fetches
// a set again nor forgets its keys.
type remoteKeySets struct {
	mu      sync.Mutex
	m       map[remoteKeySetKey]*auth.RemoteJWKS
	started bool // refreshing: sets made from now on start at once
}

type remoteKeySetKey struct {
	url     string
	refresh time.Duration
}

// get returns the set of url refreshed every refresh, making it once. It
// logs a failed fetch when the one before succeeded, and the recovery.
func (rs *remoteKeySets) get(url string, refresh time.Duration, clk clock.Clock, log *slog.Logger) (*auth.RemoteJWKS, error) {
	k := remoteKeySetKey{url, refresh}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r := rs.m[k]; r != nil {
		return r, nil
	}
	failing := false
	onFetch := func(err error) {
		switch {
		case err != nil && !failing:
			log.Warn("fetching jwks failed; the keys fetched before stay in use", "url", url, "error", err)
		case err == nil && failing:
			log.Info("fetching jwks works again", "url", url)
		}
		failing = err != nil
	}
	r, err := auth.NewRemoteJWKS(auth.RemoteJWKSSettings{URL: url, Refresh: refresh, Clock: clk, OnFetch: onFetch})
	if err != nil {
		return nil, err
	}
	if rs.m == nil {
		rs.m = map[remoteKeySetKey]*auth.RemoteJWKS{}
	}
	rs.m[k] = r
	if rs.started {
		r.Start()
	}
	return r, nil
}

// start begins refreshing every set, and every set made later.
func (rs *remoteKeySets) start() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.started = true
	for _, r := range rs.m {
		r.Start()
	}
}

// retain stops and forgets the sets that keep does not hold: after a
// reload, those the new config no longer names.
func (rs *remoteKeySets) retain(keep []*auth.RemoteJWKS) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for k, r := range rs.m {
		if !slices.Contains(keep, r) {
			r.Close()
			delete(rs.m, k)
		}
	}
}

func (rs *remoteKeySets) close() { rs.retain(nil) }

// buildAuth reads the key file, JWKS and secrets a config names and makes
// the authenticators of its generation; nil when the config has no auth.
// It also returns the remote key sets the generation uses.
func buildAuth(a *Auth, clk clock.Clock, remote *remoteKeySets, log *slog.Logger) (*authenticators, []*auth.RemoteJWKS, error) {
	if a == nil {
		return nil, nil, nil
	}
	var keys []auth.APIKey
	if a.KeysFile != "" {
		var err error
		if keys, err = auth.LoadKeys(a.KeysFile); err != nil {
			return nil, nil, fmt.Errorf("loading api keys: %w", err)
		}
	}
	var used []*auth.RemoteJWKS
	build := func(j *JWT) (*auth.Authenticator, error) {
		s := auth.Settings{Keys: keys, KeyHeader: a.KeyHeader, Clock: clk}
		if j != nil {
			js := &auth.JWTSettings{
				Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway, AllowNoExpiry: j.AllowNoExpiry,
				TenantClaim: j.TenantClaim, RoutesClaim: j.RoutesClaim, TenantRoutes: j.TenantRoutes,
			}
			if j.JWKSURL != "" {
				r, err := remote.get(j.JWKSURL, j.JWKSRefresh, clk, log)
				if err != nil {
					return nil, fmt.Errorf("jwks of %s: %w", j.Issuer, err)
				}
				js.RemoteJWKS = r
				used = append(used, r)
			}
			if j.JWKSFile != "" {
				ks, err := auth.LoadJWKS(j.JWKSFile)
				if err != nil {
					return nil, fmt.Errorf("loading jwks of %s: %w", j.Issuer, err)
				}
				js.JWKS = ks
			}
			if j.SecretFile != "" {
				b, err := os.ReadFile(j.SecretFile)
				if err != nil {
					return nil, fmt.Errorf("reading jwt secret of %s: %w", j.Issuer, err)
				}
				js.Secret = trimSecret(b)
			}
			s.JWT = js
		}
		au, err := auth.New(s)
		if err != nil {
			return nil, fmt.Errorf("configuring auth: %w", err)
		}
		return au, nil
	}
	as := &authenticators{}
	if len(a.JWT) == 0 {
		first, err := build(nil)
		if err != nil {
			return nil, nil, err
		}
		as.first = first
		return as, nil, nil
	}
	for i := range a.JWT {
		au, err := build(&a.JWT[i])
		if err != nil {
			return nil, nil, err
		}
		if i == 0 {
			as.first = au
		}
		if len(a.JWT) > 1 {
			if as.byIssuer == nil {
				as.byIssuer = map[string]*auth.Authenticator{}
			}
			as.byIssuer[a.JWT[i].Issuer] = au
		}
	}
	return as, used, nil
}

// pick returns the authenticator for the request's credentials: the one
// of the issuer a bearer JWT names, else the first (API keys, a missing
// credential, or a token from an issuer not configured, which it refuses).
func (as *authenticators) pick(r *request) *auth.Authenticator {
	if as.byIssuer == nil {
		return as.first
	}
	if au := as.byIssuer[tokenIssuer(r.Peek("Authorization"))]; au != nil {
		return au
	}
	return as.first
}

// tokenIssuer reads the iss claim of a bearer JWT without verifying it,
// only to choose whose keys verify it; "" when there is none.
func tokenIssuer(authz []byte) string {
	const prefix = "Bearer "
	if len(authz) <= len(prefix) || !strings.EqualFold(string(authz[:len(prefix)]), prefix) {
		return ""
	}
	parts := strings.Split(string(authz[len(prefix):]), ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Iss
}

// trimSecret drops the line end an editor leaves at the end of a file.
func trimSecret(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// authenticate checks the request's credentials under the route's auth
// mode and sets the tenant; on refusal it writes the 401 or 403 and
// reports false.
func (g *Gateway) authenticate(as *authenticators, x *exchange) bool {
	id, err := as.pick(&x.req).Authenticate(&x.req, x.route.name)
	if err == nil {
		x.tenant, x.keyID = id.Tenant, id.Subject
		return true
	}
	var ae *auth.Error
	if errors.As(err, &ae) && ae.Reason == auth.ReasonMissing && x.route.auth == AuthOptional {
		return true
	}
	g.refuseAuth(x, err)
	return false
}

// refuseAuth answers a request whose credentials were refused: an
// *auth.Error's status, reason and challenge, else 401.
func (g *Gateway) refuseAuth(x *exchange, err error) {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		ae = &auth.Error{Status: http.StatusUnauthorized, Reason: auth.ReasonInvalid, Message: "credentials could not be checked", Scheme: "Bearer"}
	}
	x.message = ae.Message
	g.reject(x, ae.Status, "auth", ae.Reason, 0)
	if c := ae.Challenge(); c != "" {
		x.resp.fields = append(x.resp.fields, h1.Header{Name: bs("WWW-Authenticate"), Value: []byte(c)})
	}
}
