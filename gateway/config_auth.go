package gateway

import (
	"cmp"
	"fmt"
	"time"

	"github.com/relia-dev/relia/gateway/auth"
)

// Auth configures the gateway's authentication: API keys from a file,
// bearer JWTs, or both. Which routes a caller may call comes from its key
// entry (routes), or from the token (routesClaim, tenantRoutes); a call to
// any other route is refused with 403.
type Auth struct {
	// KeysFile is an API key file (kind: APIKeys): for each key its id,
	// tenant, the routes it may call and the SHA-256 of the key, never the
	// key itself. Read at start and on every reload.
	KeysFile string `yaml:"keysFile"`
	// KeyHeader is the request header API keys come in; default
	// X-API-Key. A key may also come as "Authorization: Bearer <key>".
	KeyHeader string `yaml:"keyHeader"`
	// JWT lists the issuers whose bearer tokens are accepted. A token is
	// verified under the entry whose issuer matches its iss; with several
	// entries each must name its issuer.
	JWT []JWT `yaml:"jwt"`
}

// JWT configures bearer-token verification: HS256 with a shared secret,
// RS256 and ES256 with the issuer's published keys (JWKS).
type JWT struct {
	// Issuer, when set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Audience, when set, must be among the token's aud.
	Audience string `yaml:"audience"`
	// JWKSFile is a JSON Web Key Set file (the issuer's jwks_uri saved)
	// whose keys verify RS256 and ES256 tokens by kid.
	JWKSFile string `yaml:"jwksFile"`
	// JWKSURL is the issuer's jwks_uri, fetched at start and every
	// JWKSRefresh, and at once (at most every 30s) for a token whose kid
	// the set lacks, so rotated keys need no config change. A failed fetch
	// keeps the last good set; /readyz reports the set's state. At most
	// one of JWKSFile and JWKSURL.
	JWKSURL string `yaml:"jwksURL"`
	// JWKSRefresh is how often JWKSURL is fetched; default 10m.
	JWKSRefresh time.Duration `yaml:"jwksRefresh"`
	// SecretFile holds the HS256 secret, at least 32 bytes.
	SecretFile string `yaml:"secretFile"`
	// Leeway allows for clock skew on exp and nbf; default none.
	Leeway time.Duration `yaml:"leeway"`
	// AllowNoExpiry accepts tokens without exp.
	AllowNoExpiry bool `yaml:"allowNoExpiry"`
	// TenantClaim is the claim naming the caller's tenant; default tenant.
	TenantClaim string `yaml:"tenantClaim"`
	// RoutesClaim is a claim listing the routes the token may call
	// (space-separated, as scope is, or an array).
	RoutesClaim string `yaml:"routesClaim"`
	// TenantRoutes lists, per tenant, the routes its tokens may call, by
	// name or glob. With neither this nor RoutesClaim a valid token may
	// call every route.
	TenantRoutes map[string][]string `yaml:"tenantRoutes"`
}

// check validates spec.auth at path at.
func (a Auth) check(p *problems, at string) {
	if a.KeysFile == "" && len(a.JWT) == 0 {
		p.add(at, "auth needs keysFile, jwt or both")
	}
	issuers := map[string]bool{}
	for i, j := range a.JWT {
		jp := fmt.Sprintf("%s.jwt[%d]", at, i)
		j.check(p, jp)
		if len(a.JWT) > 1 && j.Issuer == "" {
			p.add(jp+".issuer", "with several issuers each must name its iss")
		}
		if issuers[j.Issuer] {
			p.add(jp+".issuer", "duplicate issuer %q", j.Issuer)
		}
		issuers[j.Issuer] = true
	}
}

// withDefaults writes out the header API keys come in and each issuer's
// defaults.
func (a Auth) withDefaults() Auth {
	a.KeyHeader = cmp.Or(a.KeyHeader, auth.DefaultKeyHeader)
	a.JWT = mapSlice(a.JWT, JWT.withDefaults)
	return a
}

// check validates one issuer; what lies between issuers is Auth's to
// check.
func (j JWT) check(p *problems, at string) {
	switch {
	case j.JWKSFile == "" && j.JWKSURL == "" && j.SecretFile == "":
		p.add(at, "an issuer needs jwksFile, jwksURL or secretFile")
	case j.JWKSFile != "" && j.JWKSURL != "":
		p.add(at+".jwksURL", "jwksFile and jwksURL are both set; use one")
	}
	if j.JWKSURL != "" {
		if err := auth.CheckJWKSURL(j.JWKSURL); err != nil {
			p.add(at+".jwksURL", "%v", err)
		}
	}
	if j.JWKSRefresh < 0 || (j.JWKSRefresh > 0 && j.JWKSRefresh < time.Second) {
		p.add(at+".jwksRefresh", "jwksRefresh %v: must be at least 1s", j.JWKSRefresh)
	} else if j.JWKSRefresh != 0 && j.JWKSURL == "" {
		p.add(at+".jwksRefresh", "jwksRefresh without jwksURL")
	}
}

func (j JWT) withDefaults() JWT {
	if j.JWKSURL != "" && j.JWKSRefresh == 0 {
		j.JWKSRefresh = auth.DefaultJWKSRefresh
	}
	j.TenantClaim = cmp.Or(j.TenantClaim, auth.DefaultTenantClaim)
	return j
}
