package redisrate_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/gateway/redisrate"
	"github.com/relia-dev/relia/internal/redistest"
	"github.com/relia-dev/relia/resilience"
)

func newLimiter(t *testing.T, c redis.UniversalClient, s redisrate.Settings) *redisrate.Limiter {
	t.Helper()
	if s.OnUnreachable == 0 {
		s.OnUnreachable = redisrate.FailClosed
	}
	if s.Timeout == 0 {
		// Tests that are not about timeouts must not degrade because a
		// busy machine made one Redis call slower than the 50ms default.
		s.Timeout = 2 * time.Second
	}
	l, err := redisrate.New(c, s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func allow(t *testing.T, l *redisrate.Limiter, key string) redisrate.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), key)
	if err != nil {
		t.Fatalf("Allow(%q): %v", key, err)
	}
	return d
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	t.Parallel()
	good := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer good.Close()
	noCtx := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer noCtx.Close()
	ok := redisrate.Settings{Rate: 10, OnUnreachable: redisrate.FailOpen}
	tests := []struct {
		name   string
		client redis.UniversalClient
		edit   func(*redisrate.Settings)
		want   string
	}{
		{"valid", good, func(*redisrate.Settings) {}, ""},
		{"nil client", nil, func(*redisrate.Settings) {}, "client: must not be nil"},
		{"client without context timeouts", noCtx, func(*redisrate.Settings) {}, "ContextTimeoutEnabled"},
		{"zero rate", good, func(s *redisrate.Settings) { s.Rate = 0 }, "rate 0"},
		{"NaN rate", good, func(s *redisrate.Settings) { s.Rate = math.NaN() }, "rate NaN"},
		{"rate above a million", good, func(s *redisrate.Settings) { s.Rate = 2e6 }, "at most"},
		{"negative burst", good, func(s *redisrate.Settings) { s.Burst = -1 }, "burst -1"},
		{"huge burst", good, func(s *redisrate.Settings) { s.Rate = 1e-3; s.Burst = 1 << 40 }, "too long to refill"},
		{"unreachable unset", good, func(s *redisrate.Settings) { s.OnUnreachable = 0 }, "on unreachable 0"},
		{"unreachable unknown", good, func(s *redisrate.Settings) { s.OnUnreachable = 9 }, "on unreachable 9"},
		{"negative timeout", good, func(s *redisrate.Settings) { s.Timeout = -time.Second }, "timeout -1s"},
		{"negative recheck", good, func(s *redisrate.Settings) { s.Recheck = -time.Second }, "recheck -1s"},
		{"bad local rate", good, func(s *redisrate.Settings) { s.OnUnreachable = redisrate.FailLocal; s.LocalRate = -1 }, "local fallback"},
		{"local rate ignored when not local", good, func(s *redisrate.Settings) { s.LocalRate = -1 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := ok
			s.Name = "api"
			tt.edit(&s)
			_, err := redisrate.New(tt.client, s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "redis rate limiter api: ") {
				t.Fatalf("New = %v, want an error naming the limiter and containing %q", err, tt.want)
			}
		})
	}
}

func TestParseUnreachable(t *testing.T) {
	t.Parallel()
	for _, u := range []redisrate.Unreachable{redisrate.FailOpen, redisrate.FailClosed, redisrate.FailLocal} {
		text, err := u.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back redisrate.Unreachable
		if err := back.UnmarshalText([]byte(strings.ToUpper(string(text)))); err != nil || back != u {
			t.Fatalf("round trip of %v = %v, %v", u, back, err)
		}
	}
	if _, err := redisrate.ParseUnreachable("sometimes"); err == nil {
		t.Fatal("ParseUnreachable accepted an unknown choice")
	}
	if _, err := redisrate.Unreachable(0).MarshalText(); err == nil {
		t.Fatal("MarshalText accepted the unset choice")
	}
}

func TestBurstThenLimit(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// A token every 10 s: the six calls come well within one, however
	// busy the machine, so none is refilled between them.
	l := newLimiter(t, srv.Client(t), redisrate.Settings{Rate: 0.1, Burst: 5})
	for i := range 5 {
		d := allow(t, l, "client")
		if !d.Allowed || d.Degraded || d.Remaining != 4-i {
			t.Fatalf("call %d: %+v, want allowed with %d remaining", i, d, 4-i)
		}
	}
	d := allow(t, l, "client")
	if d.Allowed || d.Reason != redisrate.ReasonRateLimited || d.Remaining != 0 {
		t.Fatalf("sixth call: %+v, want refused as rate_limited", d)
	}
	// At a token every 10 s, the next is due within 10 s of the first
	// take; the script measures on Redis's clock in microseconds.
	if d.RetryAfter <= 0 || d.RetryAfter > 10*time.Second {
		t.Fatalf("RetryAfter = %s, want in (0, 10s]", d.RetryAfter)
	}
}

func TestRetryAfterIsWhenTheNextTokenIsDue(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	// A token every 500 ms: long enough that the second call comes
	// before the next is due on a busy machine (at 50 ms it need not),
	// short enough to wait for.
	l := newLimiter(t, srv.Client(t), redisrate.Settings{Rate: 2, Burst: 1})
	if d := allow(t, l, "k"); !d.Allowed {
		t.Fatalf("first call refused: %+v", d)
	}
	d := allow(t, l, "k")
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 500*time.Millisecond {
		t.Fatalf("second call: %+v, want refused with RetryAfter in (0, 500ms]", d)
	}
	// The buckets run on Redis's clock, so only real time refills them.
	time.Sleep(d.RetryAfter)
	if d := allow(t, l, "k"); !d.Allowed {
		t.Fatalf("call after RetryAfter refused: %+v", d)
	}
}

func TestKeysAreIsolatedHashedAndExpire(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := srv.Client(t)
	// A token every 5 s: no refill between the calls, however slow.
	l := newLimiter(t, client, redisrate.Settings{Rate: 0.2, Burst: 2, Prefix: "test:"})
	secret := "sk_live_very_secret_api_key"
	allow(t, l, secret)
	allow(t, l, secret)
	if d := allow(t, l, secret); d.Allowed {
		t.Fatalf("third call of a burst-2 key allowed: %+v", d)
	}
	if d := allow(t, l, "other"); !d.Allowed || d.Remaining != 1 {
		t.Fatalf("another key: %+v, want allowed with 1 remaining", d)
	}

	keys, err := client.Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("redis holds keys %q, want one per limiter key", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "test:") || strings.Contains(k, "secret") || strings.Contains(k, "other") {
			t.Fatalf("redis key %q: want the prefix and a hash, never the caller's key", k)
		}
		ttl, err := client.PTTL(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		// A full bucket refills in Burst/Rate = 10s: the key lives no
		// longer.
		if ttl <= 0 || ttl > 10*time.Second {
			t.Fatalf("TTL of %q = %s, want in (0, 10s]", k, ttl)
		}
	}
}

// TestTwoLimitersShareOneLimit: two limiters on one Redis draw from one
// bucket, atomically, whoever calls and however many call at once. The
// rate is so low (a token every 100 s) that the bucket holds exactly its
// burst for the whole test, so the count of calls allowed is exact and
// does not depend on how fast the machine is: two buckets would allow
// twice the burst, and a take that was not atomic would let concurrent
// callers through on one token. (An earlier version counted calls
// against rate times a measured second; a crowded machine made the
// callers too slow to drain the bucket and the count fell short.)
func TestTwoLimitersShareOneLimit(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	const rate, burst = 0.01, 40
	s := redisrate.Settings{Rate: rate, Burst: burst}
	limiters := []*redisrate.Limiter{newLimiter(t, srv.Client(t), s), newLimiter(t, srv.Client(t), s)}
	admin := srv.Client(t)
	start, err := admin.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	// Each limiter takes one token first, so both are known to draw from
	// the bucket, then six callers race for the rest with three calls
	// each per token left.
	var allowed [2]atomic.Int64
	for i, l := range limiters {
		if d := allow(t, l, "tenant-a"); !d.Allowed || d.Remaining != burst-2+1-i {
			t.Fatalf("limiter %d's first call: %+v, want allowed with %d remaining", i, d, burst-2+1-i)
		}
		allowed[i].Add(1)
	}
	var wg sync.WaitGroup
	for i, l := range limiters {
		for range 3 {
			wg.Go(func() {
				for range burst {
					d, err := l.Allow(context.Background(), "tenant-a")
					if err != nil || d.Degraded {
						t.Errorf("Allow: %+v, %v", d, err)
						return
					}
					if d.Allowed {
						allowed[i].Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	// Both now see the one bucket empty.
	for i, l := range limiters {
		if d := allow(t, l, "tenant-a"); d.Allowed || d.Reason != redisrate.ReasonRateLimited {
			t.Errorf("limiter %d after the race: %+v, want refused as rate_limited", i, d)
		}
	}
	end, err := admin.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := allowed[0].Load() + allowed[1].Load()
	// A token is due every 1/rate seconds of Redis's clock: a test slower
	// than that (it takes well under a second) may see one more.
	refill := int64(math.Floor(rate * end.Sub(start).Seconds()))
	t.Logf("allowed %d + %d = %d of %d calls over %s", allowed[0].Load(), allowed[1].Load(), total, 2+6*burst, end.Sub(start))
	if total < burst || total > burst+refill {
		t.Fatalf("two limiters allowed %d together, want %d (+%d refilled)", total, burst, refill)
	}
}

func TestRedisDownAnswersByPolicyAndRecovers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy redisrate.Unreachable
		// want is whether the first and second calls while down pass.
		want   [2]bool
		reason [2]string
	}{
		{redisrate.FailOpen, [2]bool{true, true}, [2]string{"", ""}},
		{redisrate.FailClosed, [2]bool{false, false}, [2]string{redisrate.ReasonUnavailable, redisrate.ReasonUnavailable}},
		{redisrate.FailLocal, [2]bool{true, false}, [2]string{"", redisrate.ReasonRateLimited}},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			clk := clock.NewFake(time.Time{})
			var changes []bool
			var mu sync.Mutex
			l := newLimiter(t, srv.Client(t), redisrate.Settings{
				Rate: 100, Burst: 100, OnUnreachable: tt.policy, LocalRate: 1, LocalBurst: 1,
				Recheck: 5 * time.Second, Timeout: 250 * time.Millisecond, Clock: clk,
				OnStateChange: func(degraded bool, err error) {
					mu.Lock()
					defer mu.Unlock()
					if degraded == (err == nil) {
						t.Errorf("OnStateChange(%v, %v): want an error exactly when degraded", degraded, err)
					}
					changes = append(changes, degraded)
				},
			})
			if d := allow(t, l, "k"); !d.Allowed || d.Degraded {
				t.Fatalf("before the outage: %+v", d)
			}

			srv.Stop()
			for i := range 2 {
				d := allow(t, l, "k")
				if !d.Degraded || d.Allowed != tt.want[i] || d.Reason != tt.reason[i] {
					t.Fatalf("call %d while down: %+v, want degraded, allowed %v, reason %q", i, d, tt.want[i], tt.reason[i])
				}
				if tt.policy == redisrate.FailClosed && d.RetryAfter != 5*time.Second {
					t.Fatalf("fail-closed RetryAfter = %s, want the recheck interval", d.RetryAfter)
				}
			}
			if !l.Degraded() {
				t.Fatal("Degraded() = false while Redis is down")
			}

			srv.Restart()
			// Until Recheck passes, the limiter does not try Redis.
			if d := allow(t, l, "other"); !d.Degraded {
				t.Fatalf("call before the recheck: %+v, want still degraded", d)
			}
			clk.Advance(5 * time.Second)
			d := allow(t, l, "k")
			if !d.Allowed || d.Degraded || d.Remaining != 99 {
				t.Fatalf("after restart and recheck: %+v, want allowed by a fresh shared bucket", d)
			}
			if l.Degraded() {
				t.Fatal("Degraded() = true after Redis answered")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(changes) != 2 || !changes[0] || changes[1] {
				t.Fatalf("state changes %v, want [true false]", changes)
			}
		})
	}
}

func TestScriptFlushRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	client := srv.Client(t)
	l := newLimiter(t, client, redisrate.Settings{Rate: 1, Burst: 3})
	allow(t, l, "k")
	if err := client.ScriptFlush(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	d := allow(t, l, "k")
	if !d.Allowed || d.Degraded || d.Remaining != 1 {
		t.Fatalf("after SCRIPT FLUSH: %+v, want allowed with the bucket kept (1 remaining)", d)
	}
	if d := allow(t, l, "k"); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("third call: %+v", d)
	}
}

func TestCallerContextEndedIsAnError(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	l := newLimiter(t, srv.Client(t), redisrate.Settings{Rate: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := l.Allow(ctx, "k")
	if !errors.Is(err, context.Canceled) || d.Allowed || d.Degraded {
		t.Fatalf("Allow with a cancelled ctx = %+v, %v; want context.Canceled", d, err)
	}
	if l.Degraded() {
		t.Fatal("a caller's cancelled context marked Redis unreachable")
	}
}

type events struct {
	mu      sync.Mutex
	reasons []string
}

func (e *events) Observe(ev resilience.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Kind == resilience.EventRejected && ev.Policy == "ratelimit" {
		e.reasons = append(e.reasons, ev.Reason)
	}
}

func TestAcquireRejectsLikeResilience(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	obs := &events{}
	l := newLimiter(t, srv.Client(t), redisrate.Settings{Name: "per-key", Rate: 1, Burst: 1, Observer: obs, Clock: clock.NewFake(time.Time{})})
	if err := l.Acquire(context.Background(), "k"); err != nil {
		t.Fatalf("first Acquire: %v", err)
	}
	err := l.Acquire(context.Background(), "k")
	var rej *resilience.RejectedError
	if !errors.As(err, &rej) || !errors.Is(err, resilience.ErrRateLimited) || rej.Reason != "rate_limited" || rej.Name != "per-key" || rej.RetryAfter <= 0 {
		t.Fatalf("second Acquire = %#v, want a rate_limited rejection with a retry hint", err)
	}
	if hint, ok := resilience.RetryHintOf(err); !ok || hint != rej.RetryAfter {
		t.Fatalf("RetryHintOf = %s, %v", hint, ok)
	}

	srv.Stop()
	err = l.Acquire(context.Background(), "k")
	if !errors.Is(err, redisrate.ErrUnavailable) || !errors.Is(err, resilience.ErrRejected) || errors.Is(err, resilience.ErrRateLimited) {
		t.Fatalf("Acquire while down (fail-closed) = %v, want ErrUnavailable", err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if want := []string{"rate_limited", "rate_limit_unavailable"}; strings.Join(obs.reasons, ",") != strings.Join(want, ",") {
		t.Fatalf("observed rejections %q, want %q", obs.reasons, want)
	}
}
