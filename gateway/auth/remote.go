package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/clock"
)

// Defaults of RemoteJWKSSettings.
const (
	DefaultJWKSRefresh     = 10 * time.Minute
	DefaultJWKSTimeout     = 5 * time.Second
	DefaultJWKSMinInterval = 30 * time.Second
	// maxJWKSBytes bounds what a fetch reads: a key set is a few KiB.
	maxJWKSBytes = 1 << 20
	// firstRetry is the wait after a failed fetch; it doubles on each
	// failure up to the refresh interval.
	firstRetry = time.Second
)

// errKeysUnavailable refuses RS256 and ES256 tokens while a RemoteJWKS has
// never fetched its set.
var errKeysUnavailable = errors.New("the issuer's signing keys could not be fetched yet")

// RemoteJWKSSettings configures a RemoteJWKS.
type RemoteJWKSSettings struct {
	// URL is the identity provider's jwks_uri, http or https.
	URL string
	// Refresh is how often the set is fetched again; zero means
	// DefaultJWKSRefresh.
	Refresh time.Duration
	// MinInterval is the least time between two fetches that tokens with
	// an unknown kid ask for, which bounds what a caller sending made-up
	// kids can cost the provider; zero means DefaultJWKSMinInterval.
	MinInterval time.Duration
	// Timeout bounds one fetch; zero means DefaultJWKSTimeout.
	Timeout time.Duration
	// Client fetches the set; nil means a client of its own.
	Client *http.Client
	// Clock schedules refreshes; nil means the real clock.
	Clock clock.Clock
	// OnFetch, when set, is called after every fetch with its error (nil
	// on success), for logs and metrics. It runs while the next fetch
	// waits, so it must be quick.
	OnFetch func(err error)
}

// RemoteJWKS is a JWKS fetched from an identity provider's jwks_uri and
// kept fresh, so keys the provider rotates in are picked up without a
// config change. It fetches on Start and every Refresh after; a failed
// fetch keeps the last good set and is retried sooner (1 s, doubling up
// to Refresh). A token whose kid the set lacks makes it fetch at once,
// at most once per MinInterval, and the token is checked against the
// result: a provider that signs with a key it has just published is not
// refused until the next refresh.
type RemoteJWKS struct {
	s   RemoteJWKSSettings
	clk clock.Clock
	set atomic.Pointer[JWKS]

	mu      sync.Mutex // held for a whole fetch: one at a time
	lastTry time.Time  // when the last fetch began, under mu
	// lastErr is the last fetch's error; nil before the first and after a
	// success. Not under mu, so Status never waits for a fetch.
	lastErr atomic.Pointer[error]

	startOnce sync.Once
	done      chan struct{} // closed when the refresh loop ends
	// ctx ends with Close: it stops the loop, and a fetch under way with
	// it.
	ctx    context.Context
	cancel context.CancelFunc
}

// NewRemoteJWKS checks s and returns a RemoteJWKS that has fetched
// nothing yet; Start begins fetching.
func NewRemoteJWKS(s RemoteJWKSSettings) (*RemoteJWKS, error) {
	if err := CheckJWKSURL(s.URL); err != nil {
		return nil, err
	}
	if s.Refresh < 0 || s.MinInterval < 0 || s.Timeout < 0 {
		return nil, errors.New("jwks: refresh, min interval and timeout must not be negative")
	}
	if s.Refresh == 0 {
		s.Refresh = DefaultJWKSRefresh
	}
	if s.MinInterval == 0 {
		s.MinInterval = DefaultJWKSMinInterval
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultJWKSTimeout
	}
	if s.Client == nil {
		s.Client = &http.Client{}
	}
	r := &RemoteJWKS{s: s, clk: clock.OrReal(s.Clock), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// CheckJWKSURL says what is wrong with raw as a jwks_uri: it must be an
// absolute http or https URL.
func CheckJWKSURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("jwks url %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("jwks url %q: the scheme must be http or https", raw)
	case u.Host == "":
		return fmt.Errorf("jwks url %q: no host", raw)
	}
	return nil
}

// URL returns the URL the set is fetched from.
func (r *RemoteJWKS) URL() string { return r.s.URL }

// Start fetches the set in the background now and on schedule until
// Close. It returns at once; Status says whether a set has arrived.
func (r *RemoteJWKS) Start() {
	r.startOnce.Do(func() { go r.run() })
}

// Close stops the refreshes, cancelling a fetch under way, and waits for
// the refresh loop to end. Keys fetched before keep verifying tokens.
func (r *RemoteJWKS) Close() {
	r.cancel()
	started := true
	r.startOnce.Do(func() { started = false })
	if started {
		<-r.done
	}
}

func (r *RemoteJWKS) run() {
	defer close(r.done)
	retry := firstRetry
	for {
		wait := r.s.Refresh
		if err := r.Refresh(); err != nil {
			wait = min(retry, r.s.Refresh)
			retry *= 2
		} else {
			retry = firstRetry
		}
		if clock.Sleep(r.ctx, r.clk, wait) != nil {
			return
		}
	}
}

// Refresh fetches the set now, waiting for a fetch already in progress
// first. On failure the previous set stays in force.
func (r *RemoteJWKS) Refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetchLocked()
}

// Status is nil when a set has been fetched and the latest fetch
// succeeded; otherwise it says what failed. Keys fetched earlier keep
// verifying tokens while Status reports a failed refresh. It does not wait
// for a fetch under way, so a slow provider cannot hold up a readiness
// probe.
func (r *RemoteJWKS) Status() error {
	switch last := r.lastErr.Load(); {
	case last != nil:
		return *last
	case r.set.Load() == nil:
		return errors.New("jwks " + r.s.URL + ": not fetched yet")
	}
	return nil
}

// Len returns how many keys the current set holds; 0 before the first
// successful fetch.
func (r *RemoteJWKS) Len() int {
	if s := r.set.Load(); s != nil {
		return s.Len()
	}
	return 0
}

func (r *RemoteJWKS) fetchLocked() error {
	r.lastTry = r.clk.Now()
	set, err := r.get()
	if err == nil {
		r.set.Store(set)
		r.lastErr.Store(nil)
	} else {
		r.lastErr.Store(&err)
	}
	if r.s.OnFetch != nil {
		r.s.OnFetch(err)
	}
	return err
}

// get fetches and parses the set once.
func (r *RemoteJWKS) get() (*JWKS, error) {
	ctx, cancel := context.WithTimeout(r.ctx, r.s.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.s.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks %s: %w", r.s.URL, err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.s.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBytes))
		return nil, fmt.Errorf("fetching jwks %s: status %d", r.s.URL, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetching jwks %s: %w", r.s.URL, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("fetching jwks %s: larger than %d bytes", r.s.URL, maxJWKSBytes)
	}
	set, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks from %s: %w", r.s.URL, err)
	}
	return set, nil
}

// key returns the key for a token's kid and alg, fetching the set again
// first when it lacks the kid (or was never fetched) and MinInterval has
// passed since the last fetch began.
func (r *RemoteJWKS) key(kid, alg string) (crypto.PublicKey, error) {
	if set := r.set.Load(); set != nil {
		k, err := set.key(kid, alg)
		if !errors.Is(err, errUnknownKid) {
			return k, err
		}
	}
	r.mu.Lock()
	if r.lastTry.IsZero() || r.clk.Since(r.lastTry) >= r.s.MinInterval {
		r.fetchLocked()
	}
	r.mu.Unlock()
	// Also after waiting out another caller's fetch: its set may have the
	// kid.
	set := r.set.Load()
	if set == nil {
		return nil, errKeysUnavailable
	}
	return set.key(kid, alg)
}
