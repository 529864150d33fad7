package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/auth"
)

// jwksServer is an identity provider's jwks_uri on a loopback port: it
// serves whatever body and status the test sets and counts fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	body    []byte
	fetches atomic.Int32
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{status: http.StatusOK, body: body}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.mu.Lock()
		status, body := s.status, s.body
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	s.status, s.body = status, body
	s.mu.Unlock()
}

// remoteAuth returns an authenticator whose RS256 and ES256 keys come from
// url, with clk driving both token times and refreshes.
func remoteAuth(t *testing.T, url string, clk *clock.Fake) (*auth.Authenticator, *auth.RemoteJWKS) {
	t.Helper()
	r, err := auth.NewRemoteJWKS(auth.RemoteJWKSSettings{URL: url, Refresh: 10 * time.Minute, MinInterval: 30 * time.Second, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	a, err := auth.New(auth.Settings{Clock: clk, JWT: &auth.JWTSettings{RemoteJWKS: r}})
	if err != nil {
		t.Fatal(err)
	}
	return a, r
}

func tokenClaims(clk clock.Clock) jwt.MapClaims {
	return jwt.MapClaims{"tenant": "shop", "sub": "user-7", "exp": clk.Now().Add(time.Hour).Unix()}
}

// authMessage is "" when h authenticates and the error's message when not.
func authMessage(t *testing.T, a *auth.Authenticator, h http.Header) string {
	t.Helper()
	_, err := a.Authenticate(h, "catalog")
	if err == nil {
		return ""
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an *auth.Error", err)
	}
	if ae.Status != http.StatusUnauthorized {
		t.Fatalf("status %d for %v, want 401", ae.Status, err)
	}
	return ae.Message
}

func TestRemoteJWKSFetchesAKidItLacksAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := newJWKSServer(t, jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey)))
	a, _ := remoteAuth(t, idp.URL, clk)
	rsaTok := bearer(sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey(), tokenClaims(clk)))
	ecTok := bearer(sign(t, jwt.SigningMethodES256, "ec-1", ecKey(), tokenClaims(clk)))

	// Never fetched: the first token fetches the set and is checked
	// against it.
	if msg := authMessage(t, a, rsaTok); msg != "" {
		t.Fatalf("rsa-1 refused on first use: %s", msg)
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches after the first token, want 1", n)
	}

	// The provider rotates to an EC key. Within the interval a token with
	// the new kid does not make it fetch again...
	idp.serve(http.StatusOK, jwksJSON(ecJWK("ec-1", &ecKey().PublicKey)))
	clk.Advance(29 * time.Second)
	if msg := authMessage(t, a, ecTok); !strings.Contains(msg, "no key with the token's kid") {
		t.Fatalf("ec-1 within the interval: %q, want the unknown-kid refusal", msg)
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches within the interval, want 1", n)
	}
	// ...once it has passed, it does, and the token is accepted.
	clk.Advance(time.Second)
	if msg := authMessage(t, a, ecTok); msg != "" {
		t.Fatalf("ec-1 after the interval refused: %s", msg)
	}
	if n := idp.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches after the interval, want 2", n)
	}
	// The rotated-out key no longer verifies, and asking for it again at
	// once fetches nothing.
	if msg := authMessage(t, a, rsaTok); !strings.Contains(msg, "no key with the token's kid") {
		t.Fatalf("rsa-1 after rotation: %q, want the unknown-kid refusal", msg)
	}
	if n := idp.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2: an unknown kid within the interval fetched again", n)
	}
}

func TestRemoteJWKSRefreshesOnScheduleAndRetriesFailuresSooner(t *testing.T) {
	t.Parallel()
	start := time.Now()
	clk := clock.NewFake(start)
	idp := newJWKSServer(t, jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey)))
	a, r := remoteAuth(t, idp.URL, clk)
	if err := r.Status(); err == nil {
		t.Fatal("Status is nil before any fetch")
	}
	r.Start()
	clk.BlockUntil(1) // the first fetch is done; the loop waits for the next
	if err := r.Status(); err != nil {
		t.Fatalf("Status after the first fetch: %v", err)
	}
	if next, _ := clk.NextDeadline(); next.Sub(clk.Now()) != 10*time.Minute {
		t.Fatalf("next fetch in %v, want the 10m refresh", next.Sub(clk.Now()))
	}

	// The provider fails: the loop retries after 1s, then 2s, and the
	// keys it had keep verifying meanwhile.
	idp.serve(http.StatusInternalServerError, []byte("down"))
	clk.Advance(10 * time.Minute)
	clk.BlockUntil(1)
	if err := r.Status(); err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("Status after a failed refresh: %v, want the 500", err)
	}
	rsaTok := bearer(sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey(), tokenClaims(clk)))
	if msg := authMessage(t, a, rsaTok); msg != "" {
		t.Fatalf("the last good set stopped verifying after a failed refresh: %s", msg)
	}
	for _, want := range []time.Duration{time.Second, 2 * time.Second} {
		next, _ := clk.NextDeadline()
		if got := next.Sub(clk.Now()); got != want {
			t.Fatalf("retry in %v, want %v", got, want)
		}
		clk.Advance(want)
		clk.BlockUntil(1)
	}
	// Back up with a rotated set: the next retry takes it.
	idp.serve(http.StatusOK, jwksJSON(ecJWK("ec-1", &ecKey().PublicKey)))
	next, _ := clk.NextDeadline()
	if got := next.Sub(clk.Now()); got != 4*time.Second {
		t.Fatalf("third retry in %v, want 4s", got)
	}
	clk.Advance(4 * time.Second)
	clk.BlockUntil(1)
	if err := r.Status(); err != nil {
		t.Fatalf("Status after recovery: %v", err)
	}
	if next, _ := clk.NextDeadline(); next.Sub(clk.Now()) != 10*time.Minute {
		t.Fatalf("after recovery the next fetch is in %v, want the 10m refresh", next.Sub(clk.Now()))
	}
	if n := r.Len(); n != 1 {
		t.Fatalf("%d keys after rotation, want 1", n)
	}
	ecTok := bearer(sign(t, jwt.SigningMethodES256, "ec-1", ecKey(), tokenClaims(clk)))
	if msg := authMessage(t, a, ecTok); msg != "" {
		t.Fatalf("the rotated-in key does not verify: %s", msg)
	}
}

func TestRemoteJWKSKeepsTheLastGoodSetOnBadResponses(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := newJWKSServer(t, jwksJSON(rsaJWK("rsa-1", &rsaKey().PublicKey)))
	a, r := remoteAuth(t, idp.URL, clk)
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	tok := bearer(sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey(), tokenClaims(clk)))
	bad := []struct {
		name   string
		status int
		body   []byte
		want   string
	}{
		{"not found", http.StatusNotFound, []byte("no"), "status 404"},
		{"not JSON", http.StatusOK, []byte("<html>"), "parsing jwks"},
		{"no usable key", http.StatusOK, []byte(`{"keys":[]}`), "no RS256 or ES256 signing key"},
		{"private key", http.StatusOK, []byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQAB","e":"AQAB","d":"AQAB"}]}`), "kid \"k\""},
		{"too large", http.StatusOK, []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`), "larger than"},
	}
	for _, b := range bad {
		idp.serve(b.status, b.body)
		err := r.Refresh()
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%s: Refresh = %v, want an error with %q", b.name, err, b.want)
		}
		if msg := authMessage(t, a, tok); msg != "" {
			t.Errorf("%s: the last good set stopped verifying: %s", b.name, msg)
		}
	}
}

func TestRemoteJWKSRefusesTokensUntilASetArrives(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	idp := newJWKSServer(t, nil)
	idp.serve(http.StatusServiceUnavailable, nil)
	a, r := remoteAuth(t, idp.URL, clk)
	tok := bearer(sign(t, jwt.SigningMethodRS256, "rsa-1", rsaKey(), tokenClaims(clk)))
	if msg := authMessage(t, a, tok); !strings.Contains(msg, "signing keys could not be fetched yet") {
		t.Fatalf("token before any set: %q", msg)
	}
	if err := r.Status(); err == nil || !strings.Contains(err.Error(), "status 503") {
		t.Fatalf("Status = %v, want the 503", err)
	}
}

func TestNewRemoteJWKSRefusesBadSettings(t *testing.T) {
	t.Parallel()
	for _, s := range []auth.RemoteJWKSSettings{
		{URL: "ftp://idp.example/jwks"},
		{URL: "https:///jwks"},
		{URL: "://bad"},
		{URL: "https://idp.example/jwks", Refresh: -time.Second},
	} {
		if _, err := auth.NewRemoteJWKS(s); err == nil {
			t.Errorf("NewRemoteJWKS(%+v) accepted", s)
		}
	}
	r, err := auth.NewRemoteJWKS(auth.RemoteJWKSSettings{URL: "https://idp.example/jwks"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.New(auth.Settings{JWT: &auth.JWTSettings{RemoteJWKS: r, JWKS: &auth.JWKS{}}}); err == nil {
		t.Error("an authenticator with both a JWKS and a remote JWKS was accepted")
	}
	r.Close() // never started: returns at once
}

func TestRemoteJWKSCloseCancelsAFetchUnderWay(t *testing.T) {
	t.Parallel()
	hung := make(chan struct{})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(hung)
		<-r.Context().Done() // never answers; ends when the client gives up
	}))
	t.Cleanup(idp.Close)
	r, err := auth.NewRemoteJWKS(auth.RemoteJWKSSettings{URL: idp.URL, Timeout: time.Hour, Clock: clock.NewFake(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	<-hung
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a fetch that never ends")
	}
	if err := r.Status(); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Status after Close = %v, want the cancelled fetch", err)
	}
}
