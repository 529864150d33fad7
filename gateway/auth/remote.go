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
	lastErr error      // its error, under mu

	startOnce, closeOnce sync.Once
	stop, done           chan struct{}
	// ctx ends with Close, so a fetch under way does not hold it up.
	ctx    context.Context
	cancel context.CancelFunc
}

// NewRemoteJWKS checks s and returns a RemoteJWKS that has fetched
// nothing yet; Start begins fetching.
func NewRemoteJWKS(s RemoteJWKSSettings) (*RemoteJWKS, error) {
	u, err := url.Parse(s.URL)
	switch {
	case err != nil:
		return nil, fmt.Errorf("jwks url %q: %w", s.URL, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("jwks url %q: the scheme must be http or https", s.URL)
	case u.Host == "":
		return nil, fmt.Errorf("jwks url %q: no host", s.URL)
	case s.Refresh < 0 || s.MinInterval < 0 || s.Timeout < 0:
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
	r := &RemoteJWKS{s: s, clk: clock.OrReal(s.Clock), stop: make(chan struct{}), done: make(chan struct{})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
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
	r.closeOnce.Do(func() {
		r.cancel()
		close(r.stop)
	})
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
		if err := r.fetch(); err != nil {
			wait = min(retry, r.s.Refresh)
			retry *= 2
		} else {
			retry = firstRetry
		}
		t := r.clk.NewTimer(wait)
		select {
		case <-t.C():
		case <-r.stop:
			t.Stop()
			return
		}
	}
}

// Refresh fetches the set now, waiting for a fetch already in progress
// first. On failure the previous set stays in force.
func (r *RemoteJWKS) Refresh() error {
	return r.fetch()
}

// Status is nil when a set has been fetched and the latest fetch
// succeeded; otherwise it says what failed. Keys fetched earlier keep
// verifying tokens while Status reports a failed refresh.
func (r *RemoteJWKS) Status() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.lastErr != nil:
		return r.lastErr
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

func (r *RemoteJWKS) fetch() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetchLocked()
}

func (r *RemoteJWKS) fetchLocked() error {
	r.lastTry = r.clk.Now()
	set, err := r.get()
	r.lastErr = err
	if err == nil {
		r.set.Store(set)
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
