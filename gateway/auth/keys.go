package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path"

	"github.com/relia-dev/relia/internal/config"
)

// KeysKind is the kind: of an API key file's documents.
const KeysKind = "APIKeys"

// KeyPrefix starts every key NewKey makes, so that a leaked key is easy
// to recognise (and to find with secret scanners).
const KeyPrefix = "relia_"

// APIKey is one entry of an API key file: who holds a key and what it
// may call. The key itself is not stored, only its SHA-256.
type APIKey struct {
	// ID names the key in logs and metrics, never the key itself: a
	// stable name for the holder ("shop-web-2026").
	ID string `yaml:"id" config:"required"`
	// Tenant is whom the key's calls are accounted to: rate limits,
	// quotas and logs group by it.
	Tenant string `yaml:"tenant" config:"required"`
	// Routes lists the gateway routes the key may call, by name or by
	// glob as path.Match reads it ("orders-*"); "*" allows every route. A
	// route not listed is refused with 403.
	Routes []string `yaml:"routes" config:"required"`
	// SHA256 is the lower-case hex SHA-256 of the key, as HashKey returns
	// it.
	SHA256 string `yaml:"sha256" config:"required"`
}

// keyFile is the body of an APIKeys document.
type keyFile struct {
	Spec struct {
		Keys []APIKey `yaml:"keys"`
	} `yaml:"spec"`
}

// LoadKeys reads an API key file (see ParseKeys).
func LoadKeys(file string) ([]APIKey, error) {
	docs, err := config.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return keysOf(docs)
}

// ParseKeys parses an API key file: one or more documents of kind APIKeys,
// version relia/v1, each with a list of keys:
//
//	kind: APIKeys
//	version: relia/v1
//	spec:
//	  keys:
//	    - id: shop-web
//	      tenant: shop
//	      routes: [catalog, "orders-*"]
//	      sha256: 4f9c...e1 # HashKey of the key handed to the client
//
// It checks every entry: id, tenant, routes and sha256 present, sha256 64
// lower-case hex digits, route globs well formed, ids and hashes unique.
// Errors name file:line:column and the field. name is used in errors
// only.
func ParseKeys(name string, data []byte) ([]APIKey, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	return keysOf(docs)
}

func keysOf(docs []config.Document) ([]APIKey, error) {
	var keys []APIKey
	var errs []error
	ids := map[string]bool{}
	hashes := map[string]bool{}
	for _, d := range docs {
		if d.Kind != KeysKind {
			errs = append(errs, d.Errorf("kind", "%q in an API key file: want %s", d.Kind, KeysKind))
			continue
		}
		var f keyFile
		if err := d.Decode(&f); err != nil {
			errs = append(errs, err)
			continue
		}
		for i, k := range f.Spec.Keys {
			at := fmt.Sprintf("spec.keys[%d]", i)
			switch {
			case k.ID == "":
				errs = append(errs, d.Errorf(at+".id", "must not be empty"))
			case ids[k.ID]:
				errs = append(errs, d.Errorf(at+".id", "%q appears twice", k.ID))
			case k.Tenant == "":
				errs = append(errs, d.Errorf(at+".tenant", "must not be empty"))
			case !isHexSHA256(k.SHA256):
				errs = append(errs, d.Errorf(at+".sha256", "must be 64 lower-case hex digits, the SHA-256 of the key"))
			case hashes[k.SHA256]:
				errs = append(errs, d.Errorf(at+".sha256", "the same key is listed twice"))
			case len(k.Routes) == 0:
				errs = append(errs, d.Errorf(at+".routes", "must list at least one route (\"*\" for all)"))
			default:
				if j, err := checkPatterns(k.Routes); err != nil {
					errs = append(errs, d.Errorf(fmt.Sprintf("%s.routes[%d]", at, j), "%v", err))
					continue
				}
				ids[k.ID], hashes[k.SHA256] = true, true
				keys = append(keys, k)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return keys, nil
}

// checkPatterns returns the index of the first malformed route glob.
func checkPatterns(patterns []string) (int, error) {
	for i, p := range patterns {
		if p == "" {
			return i, errors.New("route pattern must not be empty")
		}
		if _, err := path.Match(p, ""); err != nil {
			return i, fmt.Errorf("route pattern %q: %w", p, err)
		}
	}
	return 0, nil
}

func isHexSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// HashKey returns the lower-case hex SHA-256 of key, the form an API key
// file stores.
//
// A fast hash is the right one for API keys, unlike passwords: a slow
// hash (bcrypt, argon2id) only protects secrets a person chose and an
// attacker can enumerate, while an API key is 256 random bits (NewKey)
// that no amount of hashing speed brings within reach of guessing. A
// slow hash would instead cost every request milliseconds of CPU, a gift
// to anyone flooding the gateway with made-up keys.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// NewKey returns a fresh API key: KeyPrefix and 256 bits from
// crypto/rand, base64url. Hand it to the client once and store only
// HashKey of it.
func NewKey() string {
	var b [32]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// keyStore finds the entry of a presented key. Entries are indexed by the
// first 8 bytes of their digest and confirmed by a constant-time compare
// of all 32: how long a lookup takes depends only on whether some stored
// digest shares 64 bits with the digest of what the caller sent, which
// SHA-256 makes as hard to steer as finding a partial preimage, so timing
// tells an attacker nothing about any stored key.
type keyStore struct {
	index map[uint64][]int
	keys  []storedKey
}

type storedKey struct {
	APIKey
	digest [sha256.Size]byte
}

func newKeyStore(keys []APIKey) (*keyStore, error) {
	s := &keyStore{index: map[uint64][]int{}, keys: make([]storedKey, len(keys))}
	seen := map[[sha256.Size]byte]bool{}
	for i, k := range keys {
		switch {
		case k.ID == "":
			return nil, fmt.Errorf("api key %d: id: must not be empty", i)
		case k.Tenant == "":
			return nil, fmt.Errorf("api key %s: tenant: must not be empty", k.ID)
		case len(k.Routes) == 0:
			return nil, fmt.Errorf("api key %s: routes: must list at least one route", k.ID)
		}
		if !isHexSHA256(k.SHA256) {
			return nil, fmt.Errorf("api key %s: sha256: must be 64 lower-case hex digits", k.ID)
		}
		if _, err := checkPatterns(k.Routes); err != nil {
			return nil, fmt.Errorf("api key %s: %w", k.ID, err)
		}
		sk := storedKey{APIKey: k}
		hex.Decode(sk.digest[:], []byte(k.SHA256))
		if seen[sk.digest] {
			return nil, fmt.Errorf("api key %s: the same key is listed twice", k.ID)
		}
		seen[sk.digest] = true
		s.keys[i] = sk
		p := binary.LittleEndian.Uint64(sk.digest[:8])
		s.index[p] = append(s.index[p], i)
	}
	return s, nil
}

// lookup returns the entry whose digest is key's, or nil.
func (s *keyStore) lookup(key string) *storedKey {
	d := sha256.Sum256([]byte(key))
	var found *storedKey
	for _, i := range s.index[binary.LittleEndian.Uint64(d[:8])] {
		if subtle.ConstantTimeCompare(d[:], s.keys[i].digest[:]) == 1 {
			found = &s.keys[i]
		}
	}
	return found
}

// routeAllowed reports whether route matches one of patterns.
func routeAllowed(patterns []string, route string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, route); ok {
			return true
		}
	}
	return false
}
