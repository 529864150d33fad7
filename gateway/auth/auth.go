package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/relia-dev/relia/clock"
)

// DefaultKeyHeader is the request header that carries an API key when
// Settings.KeyHeader is left empty.
const DefaultKeyHeader = "X-API-Key"

// DefaultTenantClaim is the JWT claim that names the tenant when
// JWTSettings.TenantClaim is left empty.
const DefaultTenantClaim = "tenant"

// minSecretBytes is the shortest HS256 secret accepted: RFC 7518 section
// 3.2 requires a key at least as long as the hash, 256 bits.
const minSecretBytes = 32

// HeaderGetter is how the authenticator reads request headers, so that it
// works under any HTTP engine: http.Header satisfies it, and a fasthttp
// request header needs a one-line adapter. Get must match names
// case-insensitively.
type HeaderGetter interface {
	Get(name string) string
}

var _ HeaderGetter = http.Header(nil)

// Settings configures an Authenticator. Keys, JWT or both must be set.
type Settings struct {
	// Keys are the API keys accepted, as LoadKeys reads them from a file.
	// Nil means API keys are not accepted.
	Keys []APIKey
	// KeyHeader is the request header that carries an API key. Zero means
	// DefaultKeyHeader. A key may also come as "Authorization: Bearer
	// <key>" when it does not look like a JWT.
	KeyHeader string
	// JWT configures bearer tokens; nil means they are not accepted.
	JWT *JWTSettings
	// Clock is the time tokens' exp and nbf are checked against; nil
	// means the real clock.
	Clock clock.Clock
}

// JWTSettings configures bearer-token (JWT) authentication. Secret, JWKS
// or both must be set; the algorithms accepted are exactly those whose
// keys are configured.
type JWTSettings struct {
	// Secret verifies HS256 tokens; nil means HS256 is refused. It must be
	// at least 32 bytes.
	Secret []byte
	// JWKS verifies RS256 and ES256 tokens, each by the key its kid names;
	// nil (and no RemoteJWKS) means both are refused.
	JWKS *JWKS
	// RemoteJWKS does what JWKS does with a set fetched from the
	// provider's jwks_uri and kept fresh. At most one of the two is set.
	RemoteJWKS *RemoteJWKS
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be among the token's aud.
	Audience string
	// Leeway is how far exp and nbf may be off to allow for clock skew
	// between the issuer and the gateway. Negative is an error.
	Leeway time.Duration
	// AllowNoExpiry accepts tokens without exp. By default they are
	// refused: a token that never expires is a credential that can never
	// be taken back.
	AllowNoExpiry bool
	// TenantClaim is the claim, a string, that names the caller's tenant.
	// Zero means DefaultTenantClaim. A token without it is refused.
	TenantClaim string
	// RoutesClaim, when set, is a claim listing routes the token may call:
	// a space-separated string (as OAuth's scope is) or an array of
	// strings, each a route name or glob.
	RoutesClaim string
	// TenantRoutes lists, per tenant, the routes its tokens may call, as
	// names or globs. A route is allowed when RoutesClaim or TenantRoutes
	// allows it; when neither is set, a valid token may call every route.
	TenantRoutes map[string][]string
}

// Identity is who an authenticated request comes from.
type Identity struct {
	// Tenant is whom the request is accounted to.
	Tenant string
	// Subject is the API key's ID or the token's sub: safe to log.
	Subject string
	// Method is "api_key" or "jwt".
	Method string
}

// Sentinels that every *Error matches by status.
var (
	// ErrUnauthenticated matches 401 errors: no credentials, or ones that
	// are not valid.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden matches 403 errors: valid credentials that may not call
	// the route.
	ErrForbidden = errors.New("forbidden")
)

// Reasons an *Error gives, as metric label and log field.
const (
	ReasonMissing   = "missing_credentials"
	ReasonInvalid   = "invalid_credentials"
	ReasonExpired   = "token_expired"
	ReasonForbidden = "forbidden"
)

// Error is an authentication failure, ready to render: Status (401 or
// 403), a machine-readable Reason and a message safe to show the caller
// and to log, which never holds the credential itself.
type Error struct {
	// Status is http.StatusUnauthorized or http.StatusForbidden.
	Status int
	// Reason is one of the Reason constants.
	Reason string
	// Message says what was wrong, for people.
	Message string
	// Scheme is the authentication scheme a 401 challenges the caller to
	// use ("Bearer" or "ApiKey").
	Scheme string
	err    error
}

// Error describes the failure.
func (e *Error) Error() string { return "auth: " + e.Reason + ": " + e.Message }

// Unwrap returns the underlying cause, if any (a jwt error).
func (e *Error) Unwrap() error { return e.err }

// Is matches ErrUnauthenticated or ErrForbidden by Status.
func (e *Error) Is(target error) bool {
	return (target == ErrUnauthenticated && e.Status == http.StatusUnauthorized) ||
		(target == ErrForbidden && e.Status == http.StatusForbidden)
}

// JSON returns the response body: {"reason", "policy": "auth",
// "message"}, the shape of every rejection the gateway writes.
func (e *Error) JSON() []byte {
	b, _ := json.Marshal(struct {
		Reason  string `json:"reason"`
		Policy  string `json:"policy"`
		Message string `json:"message"`
	}{e.Reason, "auth", e.Message})
	return b
}

// Challenge returns the WWW-Authenticate value a 401 must carry (RFC
// 9110 section 11.6.1), with RFC 6750's error code for bearer tokens, or
// "" for a 403.
func (e *Error) Challenge() string {
	if e.Status != http.StatusUnauthorized {
		return ""
	}
	if e.Scheme == "Bearer" && e.Reason != ReasonMissing {
		return `Bearer realm="relia", error="invalid_token"`
	}
	return e.Scheme + ` realm="relia"`
}

// Authenticator checks the credentials of requests: API keys, JWTs or
// both. It is safe for concurrent use.
type Authenticator struct {
	keys      *keyStore
	keyHeader string
	jwt       *JWTSettings
	parser    *jwt.Parser
	tenant    string
	scheme    string
}

// New returns an Authenticator, or an error naming the first setting out
// of range.
func New(s Settings) (*Authenticator, error) {
	a, err := newAuthenticator(s)
	if err != nil {
		return nil, fmt.Errorf("authenticator: %w", err)
	}
	return a, nil
}

func newAuthenticator(s Settings) (*Authenticator, error) {
	if s.Keys == nil && s.JWT == nil {
		return nil, errors.New("neither keys nor jwt is set: nothing could authenticate")
	}
	a := &Authenticator{keyHeader: s.KeyHeader, scheme: "ApiKey"}
	if a.keyHeader == "" {
		a.keyHeader = DefaultKeyHeader
	}
	if s.Keys != nil {
		ks, err := newKeyStore(s.Keys)
		if err != nil {
			return nil, err
		}
		a.keys = ks
	}
	if j := s.JWT; j != nil {
		var methods []string
		switch {
		case j.Secret == nil && j.JWKS == nil && j.RemoteJWKS == nil:
			return nil, errors.New("jwt: neither secret nor jwks is set")
		case j.JWKS != nil && j.RemoteJWKS != nil:
			return nil, errors.New("jwt: jwks and remote jwks are both set; use one")
		case j.Secret != nil && len(j.Secret) < minSecretBytes:
			return nil, fmt.Errorf("jwt: secret of %d bytes: must be at least %d", len(j.Secret), minSecretBytes)
		case j.Leeway < 0:
			return nil, fmt.Errorf("jwt: leeway %s: must not be negative", j.Leeway)
		}
		for tenant, routes := range j.TenantRoutes {
			if i, err := checkPatterns(routes); err != nil {
				return nil, fmt.Errorf("jwt: tenant routes %s[%d]: %w", tenant, i, err)
			}
		}
		if j.Secret != nil {
			methods = append(methods, "HS256")
		}
		if j.JWKS != nil || j.RemoteJWKS != nil {
			methods = append(methods, "RS256", "ES256")
		}
		c := clock.OrReal(s.Clock)
		opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithLeeway(j.Leeway), jwt.WithTimeFunc(c.Now)}
		if !j.AllowNoExpiry {
			opts = append(opts, jwt.WithExpirationRequired())
		}
		if j.Issuer != "" {
			opts = append(opts, jwt.WithIssuer(j.Issuer))
		}
		if j.Audience != "" {
			opts = append(opts, jwt.WithAudience(j.Audience))
		}
		a.jwt, a.parser, a.tenant, a.scheme = j, jwt.NewParser(opts...), j.TenantClaim, "Bearer"
		if a.tenant == "" {
			a.tenant = DefaultTenantClaim
		}
	}
	return a, nil
}

// KeyHeader returns the header API keys come in.
func (a *Authenticator) KeyHeader() string { return a.keyHeader }

// Redact is the package's Redact, also hiding the header this
// authenticator reads API keys from, whatever its name.
func (a *Authenticator) Redact(name, value string) string {
	if strings.EqualFold(name, a.keyHeader) {
		return Redacted
	}
	return Redact(name, value)
}

// Authenticate checks the request's credentials and whether they may call
// route. It looks, in order, at the API key header, then at
// "Authorization: Bearer": a bearer value shaped like a JWT (three
// dot-separated parts) is verified as one, any other as an API key. A
// refusal is an *Error: 401 for missing or invalid credentials, 403 for
// valid ones not allowed on route.
func (a *Authenticator) Authenticate(h HeaderGetter, route string) (Identity, error) {
	if a.keys != nil {
		if key := h.Get(a.keyHeader); key != "" {
			return a.byKey(key, route)
		}
	}
	authz := h.Get("Authorization")
	if authz == "" {
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonMissing, a.missingHint(), nil)
	}
	scheme, cred, _ := strings.Cut(authz, " ")
	cred = strings.TrimSpace(cred)
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonInvalid, "unsupported authorization scheme: want Bearer", nil)
	}
	if strings.Count(cred, ".") == 2 {
		if a.jwt == nil {
			return Identity{}, a.fail(http.StatusUnauthorized, ReasonInvalid, "bearer tokens are not accepted here", nil)
		}
		return a.byToken(cred, route)
	}
	if a.keys == nil {
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonInvalid, "bearer value is not a JWT", nil)
	}
	return a.byKey(cred, route)
}

// missingHint tells a caller without credentials what to send.
func (a *Authenticator) missingHint() string {
	switch {
	case a.keys == nil:
		return "no credentials: send a bearer token"
	case a.jwt == nil:
		return "no credentials: send an API key in " + a.keyHeader
	}
	return "no credentials: send an API key in " + a.keyHeader + " or a bearer token"
}

func (a *Authenticator) byKey(key, route string) (Identity, error) {
	k := a.keys.lookup(key)
	if k == nil {
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonInvalid, "unknown API key", nil)
	}
	id := Identity{Tenant: k.Tenant, Subject: k.ID, Method: "api_key"}
	if !routeAllowed(k.Routes, route) {
		return id, a.fail(http.StatusForbidden, ReasonForbidden, fmt.Sprintf("API key %s may not call route %s", k.ID, route), nil)
	}
	return id, nil
}

func (a *Authenticator) byToken(token, route string) (Identity, error) {
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(token, claims, a.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonExpired, "token has expired", err)
	case err != nil:
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonInvalid, "invalid token: "+tokenProblem(err), err)
	}
	tenant, _ := claims[a.tenant].(string)
	if tenant == "" {
		return Identity{}, a.fail(http.StatusUnauthorized, ReasonInvalid, fmt.Sprintf("invalid token: no %s claim", a.tenant), nil)
	}
	sub, _ := claims["sub"].(string)
	id := Identity{Tenant: tenant, Subject: sub, Method: "jwt"}
	if !a.tokenMayCall(claims, tenant, route) {
		return id, a.fail(http.StatusForbidden, ReasonForbidden, fmt.Sprintf("tenant %s may not call route %s", tenant, route), nil)
	}
	return id, nil
}

// keyFor is the jwt.Keyfunc: the configured key for the token's alg. The
// parser has already refused algorithms whose keys are not configured, so
// an HS256 token is only ever checked against Secret, never against a
// public key used as an HMAC secret.
func (a *Authenticator) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == "HS256" {
		return a.jwt.Secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	if a.jwt.RemoteJWKS != nil {
		return a.jwt.RemoteJWKS.key(kid, alg)
	}
	return a.jwt.JWKS.key(kid, alg)
}

func (a *Authenticator) tokenMayCall(claims jwt.MapClaims, tenant, route string) bool {
	j := a.jwt
	if j.RoutesClaim == "" && j.TenantRoutes == nil {
		return true
	}
	if j.RoutesClaim != "" && routeAllowed(stringsClaim(claims[j.RoutesClaim]), route) {
		return true
	}
	return routeAllowed(j.TenantRoutes[tenant], route)
}

// stringsClaim reads a claim that lists strings: space-separated in one
// string, or an array.
func stringsClaim(v any) []string {
	switch v := v.(type) {
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// tokenProblem names what was wrong with a token in words safe to show:
// the jwt package's sentinel, never the token.
func tokenProblem(err error) string {
	for _, s := range []error{
		errNoKid, errUnknownKid, errWrongAlg, errKeysUnavailable,
		jwt.ErrTokenMalformed, jwt.ErrTokenSignatureInvalid, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenNotValidYet, jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenInvalidClaims,
	} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "not acceptable"
}

func (a *Authenticator) fail(status int, reason, msg string, cause error) *Error {
	return &Error{Status: status, Reason: reason, Message: msg, Scheme: a.scheme, err: cause}
}
