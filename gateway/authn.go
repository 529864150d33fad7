package gateway

import (
	"errors"
	"fmt"
	"os"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
	"github.com/valyala/fasthttp"
)

// requestHeader lets gateway/auth and gateway/cache read a fasthttp
// request's headers (auth.HeaderGetter, cache.HeaderGetter). fasthttp
// normalizes the names it looks up, so lookups ignore case.
type requestHeader struct{ h *fasthttp.RequestHeader }

func (r requestHeader) Get(name string) string { return string(r.h.Peek(name)) }

// buildAuth reads the key file, JWKS and secret a config names and makes
// the authenticator of its generation; nil when the config has no auth.
func buildAuth(a *Auth, clk clock.Clock) (*auth.Authenticator, error) {
	if a == nil {
		return nil, nil
	}
	s := auth.Settings{KeyHeader: a.KeyHeader, Clock: clk}
	if a.KeysFile != "" {
		keys, err := auth.LoadKeys(a.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("loading api keys: %w", err)
		}
		s.Keys = keys
	}
	if j := a.JWT; j != nil {
		js := &auth.JWTSettings{
			Issuer: j.Issuer, Audience: j.Audience, Leeway: j.Leeway, AllowNoExpiry: j.AllowNoExpiry,
			TenantClaim: j.TenantClaim, RoutesClaim: j.RoutesClaim, TenantRoutes: j.TenantRoutes,
		}
		if j.JWKSFile != "" {
			ks, err := auth.LoadJWKS(j.JWKSFile)
			if err != nil {
				return nil, fmt.Errorf("loading jwks: %w", err)
			}
			js.JWKS = ks
		}
		if j.SecretFile != "" {
			b, err := os.ReadFile(j.SecretFile)
			if err != nil {
				return nil, fmt.Errorf("reading jwt secret: %w", err)
			}
			js.Secret = trimSecret(b)
		}
		s.JWT = js
	}
	a2, err := auth.New(s)
	if err != nil {
		return nil, fmt.Errorf("configuring auth: %w", err)
	}
	return a2, nil
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
func (g *Gateway) authenticate(ctx *fasthttp.RequestCtx, a *auth.Authenticator, x *exchange) bool {
	id, err := a.Authenticate(requestHeader{&ctx.Request.Header}, x.route.name)
	if err == nil {
		x.tenant = id.Tenant
		return true
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		ae = &auth.Error{Status: fasthttp.StatusUnauthorized, Reason: auth.ReasonInvalid, Message: "credentials could not be checked", Scheme: "Bearer"}
	}
	if ae.Reason == auth.ReasonMissing && x.route.auth == AuthOptional {
		return true
	}
	x.message = ae.Message
	g.reject(ctx, x, ae.Status, "auth", ae.Reason, 0)
	if c := ae.Challenge(); c != "" {
		ctx.Response.Header.Set("WWW-Authenticate", c)
	}
	return false
}
