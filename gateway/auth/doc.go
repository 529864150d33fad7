// Package auth authenticates the gateway's callers by API key or JWT and
// decides which routes they may call, under any HTTP engine: it reads
// headers through HeaderGetter, which http.Header satisfies.
//
//	keys, err := auth.LoadKeys("keys.yaml")
//	...
//	a, err := auth.New(auth.Settings{
//		Keys: keys,
//		JWT: &auth.JWTSettings{
//			JWKS:     jwks, // auth.LoadJWKS("jwks.json")
//			Issuer:   "https://idp.example",
//			Audience: "shop-api",
//		},
//	})
//	...
//	id, err := a.Authenticate(r.Header, route)
//	var ae *auth.Error
//	if errors.As(err, &ae) {
//		w.Header().Set("WWW-Authenticate", ae.Challenge()) // on 401
//		w.WriteHeader(ae.Status)                           // 401 or 403
//		w.Write(ae.JSON())                                 // {"reason":...,"policy":"auth","message":...}
//	}
//
// # API keys
//
// An API key file (kind: APIKeys, see ParseKeys) lists each key's id,
// tenant, the routes it may call (names or globs) and the SHA-256 of the
// key, never the key: NewKey makes a key, HashKey its entry. A presented
// key is hashed and found by its digest with a constant-time comparison,
// so response times say nothing about stored keys. SHA-256 rather than a
// slow password hash is deliberate; HashKey says why.
//
// # JWTs
//
// Bearer tokens are verified with golang-jwt: HS256 with a shared secret,
// RS256 and ES256 with the key a JWKS holds under the token's kid: a file
// (LoadJWKS), or the provider's jwks_uri fetched and kept fresh
// (RemoteJWKS: refreshed on a schedule, at once for a kid it lacks, at
// most once per interval, the last good set kept when a fetch fails).
// Only the algorithms whose keys are configured are accepted, so a token
// cannot pick its own verification (no "none", no HS256 keyed with a
// public key). exp is required unless allowed otherwise, exp and nbf are
// checked against the injected clock with a leeway, and iss and aud
// against the configured values. A claim (tenant by default) names the
// tenant; routes come from a claim such as scope, a table per tenant, or
// both.
//
// # Secrets in logs
//
// Errors never quote the credential. Redact and SensitiveHeaders name the
// headers whose values must never reach a log: Authorization, cookies,
// API keys and tokens.
package auth
