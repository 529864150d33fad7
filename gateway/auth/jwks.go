package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
)

// minRSABits is the smallest RSA modulus a JWKS may hold: NIST has
// disallowed shorter ones for signatures since 2013. maxRSABits bounds
// the work one verification can cost.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// JWKS is a set of public keys that verify RS256 and ES256 tokens, read
// from a JSON Web Key Set (RFC 7517) file such as an identity provider
// publishes at its jwks_uri. Tokens pick their key by kid.
type JWKS struct {
	keys map[string]jwk
}

// jwk is one usable key: its public key and the one algorithm it
// verifies.
type jwk struct {
	alg string
	pub crypto.PublicKey
}

// rawJWK holds the members of a JWK that relia reads; the private
// members are there to refuse files that hold them.
type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	// RSA
	N string `json:"n"`
	E string `json:"e"`
	// EC
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	// Private members, of either kind.
	D string `json:"d"`
	P string `json:"p"`
}

// LoadJWKS reads a JWKS file (see ParseJWKS).
func LoadJWKS(file string) (*JWKS, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading jwks: %w", err)
	}
	s, err := ParseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

// ParseJWKS parses a JSON Web Key Set: {"keys": [...]}. It keeps RSA keys
// of at least 2048 bits for RS256 and P-256 EC keys for ES256, and skips
// keys for encryption ("use": "enc") and those of other types, curves or
// algorithms, which an identity provider's set often holds besides the
// ones relia verifies. It fails on a malformed set or key, a key holding
// private material (a verifier needs none, and a file that has it is a
// leak waiting to happen), two keys with one kid, and a set with no
// usable key.
func ParseJWKS(data []byte) (*JWKS, error) {
	var set struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parsing jwks: %w", err)
	}
	s := &JWKS{keys: map[string]jwk{}}
	for i, raw := range set.Keys {
		k, ok, err := raw.parse()
		if err != nil {
			if raw.Kid != "" {
				return nil, fmt.Errorf("jwks key %d (kid %q): %w", i, raw.Kid, err)
			}
			return nil, fmt.Errorf("jwks key %d: %w", i, err)
		}
		if !ok {
			continue
		}
		if _, dup := s.keys[raw.Kid]; dup {
			return nil, fmt.Errorf("jwks key %d: kid %q appears twice", i, raw.Kid)
		}
		s.keys[raw.Kid] = k
	}
	if len(s.keys) == 0 {
		return nil, errors.New("jwks: no RS256 or ES256 signing key")
	}
	return s, nil
}

// Len returns how many keys the set holds.
func (s *JWKS) Len() int { return len(s.keys) }

// key returns the key for a token's kid and alg. A token without a kid
// may use the set's only key.
func (s *JWKS) key(kid, alg string) (crypto.PublicKey, error) {
	k, ok := s.keys[kid]
	if !ok && kid == "" && len(s.keys) == 1 {
		for _, only := range s.keys {
			k, ok = only, true
		}
	}
	switch {
	case !ok && kid == "":
		return nil, errNoKid
	case !ok:
		return nil, errUnknownKid
	case k.alg != alg:
		return nil, errWrongAlg
	}
	return k.pub, nil
}

// Why a token found no key. They do not quote the kid: it is the
// caller's, of any length, and has no business in logs.
var (
	errNoKid      = errors.New("token has no kid and the key set holds several keys")
	errUnknownKid = errors.New("no key with the token's kid")
	errWrongAlg   = errors.New("the token's kid names a key for another algorithm")
)

// parse returns the key, or ok false for a key relia does not use.
func (r rawJWK) parse() (k jwk, ok bool, err error) {
	if r.D != "" || r.P != "" {
		return jwk{}, false, errors.New("holds private key material; a verifier needs the public key only")
	}
	if r.Use != "" && r.Use != "sig" {
		return jwk{}, false, nil
	}
	switch r.Kty {
	case "RSA":
		if r.Alg != "" && r.Alg != "RS256" {
			return jwk{}, false, nil
		}
		pub, err := r.rsa()
		return jwk{alg: "RS256", pub: pub}, err == nil, err
	case "EC":
		if r.Crv != "P-256" || (r.Alg != "" && r.Alg != "ES256") {
			return jwk{}, false, nil
		}
		pub, err := r.ec()
		return jwk{alg: "ES256", pub: pub}, err == nil, err
	case "":
		return jwk{}, false, errors.New("kty: missing")
	}
	return jwk{}, false, nil
}

// decodePair decodes two base64url members, named a and b in errors.
func decodePair(a, va, b, vb string) ([]byte, []byte, error) {
	da, err := base64.RawURLEncoding.DecodeString(va)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a, err)
	}
	db, err := base64.RawURLEncoding.DecodeString(vb)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", b, err)
	}
	return da, db, nil
}

func (r rawJWK) rsa() (*rsa.PublicKey, error) {
	n, e, err := decodePair("n", r.N, "e", r.E)
	if err != nil {
		return nil, err
	}
	if len(e) == 0 || len(e) > 4 {
		return nil, errors.New("e: must be 1 to 4 bytes")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
		return nil, fmt.Errorf("e: %d is not a valid RSA exponent", exp)
	}
	mod := new(big.Int).SetBytes(n)
	if mod.BitLen() < minRSABits || mod.BitLen() > maxRSABits {
		return nil, fmt.Errorf("n: %d bits, want %d to %d", mod.BitLen(), minRSABits, maxRSABits)
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}

func (r rawJWK) ec() (*ecdsa.PublicKey, error) {
	x, y, err := decodePair("x", r.X, "y", r.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, errors.New("x and y: must be 32 bytes each for P-256")
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("x, y: %w", err)
	}
	return pub, nil
}
