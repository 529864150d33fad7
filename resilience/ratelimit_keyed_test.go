package resilience

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/relia-dev/relia/clock"
)

// unsafeString returns a string that shares b's memory, as fast HTTP
// servers hand out header values.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }

func newTestKeyed(t *testing.T, s KeyedRateLimiterSettings) (*KeyedRateLimiter, *clock.Fake) {
	t.Helper()
	fc := clock.NewFake(time.Time{})
	s.Clock = fc
	l, err := NewKeyedRateLimiter(s)
	if err != nil {
		t.Fatalf("NewKeyedRateLimiter: %v", err)
	}
	return l, fc
}

func TestKeyedRateLimiterSettingsInvalid(t *testing.T) {
	t.Parallel()
	testBadSettings(t, "keyed rate limiter api: ", func(s KeyedRateLimiterSettings) error {
		s.Name = "api"
		_, err := NewKeyedRateLimiter(s)
		return err
	}, []badSettings[KeyedRateLimiterSettings]{
		{"no rate", KeyedRateLimiterSettings{}, "rate 0"},
		{"negative burst", KeyedRateLimiterSettings{Rate: 1, Burst: -2}, "burst -2"},
		{"negative max keys", KeyedRateLimiterSettings{Rate: 1, MaxKeys: -1}, "max keys"},
		{"huge max keys", KeyedRateLimiterSettings{Rate: 1, MaxKeys: 1 << 40}, "max keys"},
		{"negative idle TTL", KeyedRateLimiterSettings{Rate: 1, IdleTTL: -time.Second}, "idle TTL"},
	})
}

func TestKeyedRateLimiterKeysAreIsolated(t *testing.T) {
	t.Parallel()
	l, fc := newTestKeyed(t, KeyedRateLimiterSettings{Name: "api", Rate: 1, Burst: 2})
	for i := range 2 {
		if ok, _ := l.AllowKey("alice"); !ok {
			t.Fatalf("alice's call %d refused", i+1)
		}
	}
	if ok, retry := l.AllowKey("alice"); ok || retry != time.Second {
		t.Fatalf("alice's third call = %v, %s; want refused for 1s", ok, retry)
	}
	for i := range 2 {
		if ok, _ := l.AllowKey("bob"); !ok {
			t.Fatalf("bob's call %d refused though only alice spent her tokens", i+1)
		}
	}
	fc.Advance(400 * time.Millisecond)
	err := l.AcquireKey("alice")
	wantRejected(t, err, RejectedError{Policy: "ratelimit", Name: "api", Reason: "rate_limited", RetryAfter: 600 * time.Millisecond, Sentinel: ErrRateLimited})
	if l.Len() != 2 {
		t.Errorf("Len = %d, want 2", l.Len())
	}
}

// Forgetting a key after the default IdleTTL changes no decision: the
// same traffic gets the same answers, retry hints included, as from a
// limiter that remembers every key for an hour.
func TestKeyedRateLimiterIdleExpiryChangesNoDecision(t *testing.T) {
	t.Parallel()
	s := KeyedRateLimiterSettings{Rate: 5, Burst: 3}
	forgetful, fc1 := newTestKeyed(t, s)
	s.IdleTTL = time.Hour
	s.MaxKeys = 1000
	keeper, fc2 := newTestKeyed(t, s)

	rng := rand.New(rand.NewPCG(1, 2))
	forgot := false
	for i := range 20000 {
		step := time.Duration(rng.IntN(100)) * time.Millisecond
		fc1.Advance(step)
		fc2.Advance(step)
		key := "client-" + strconv.Itoa(rng.IntN(40))
		ok1, retry1 := forgetful.AllowKey(key)
		ok2, retry2 := keeper.AllowKey(key)
		if ok1 != ok2 || retry1 != retry2 {
			t.Fatalf("call %d for %s: forgetful %v, %s; keeper %v, %s", i, key, ok1, retry1, ok2, retry2)
		}
		forgot = forgot || forgetful.Len() < keeper.Len()
	}
	if !forgot {
		t.Fatal("the forgetful limiter never forgot a key: the test proves nothing")
	}
}

func TestKeyedRateLimiterExpiresIdleKeys(t *testing.T) {
	t.Parallel()
	// Burst 2 at 1/s: a key is full again, and forgotten, 2s after its
	// last call.
	l, fc := newTestKeyed(t, KeyedRateLimiterSettings{Rate: 1, Burst: 2, MaxKeys: 100}) // one shard
	l.AllowKey("a")
	fc.Advance(time.Second)
	l.AllowKey("b")
	fc.Advance(time.Second - time.Nanosecond)
	l.AllowKey("c")
	if l.Len() != 3 {
		t.Fatalf("Len = %d before any key was idle for 2s, want 3", l.Len())
	}
	fc.Advance(time.Nanosecond)
	l.AllowKey("c")
	if l.Len() != 2 {
		t.Fatalf("Len = %d once a was idle for 2s, want 2", l.Len())
	}
	l.AllowKey("d")
	l.AllowKey("e")
	fc.Advance(time.Hour)
	l.AllowKey("f")
	if l.Len() != 3 {
		t.Fatalf("Len = %d after an hour, want 3: a call forgets at most two idle keys", l.Len())
	}
	l.AllowKey("f")
	if l.Len() != 1 {
		t.Fatalf("Len = %d, want 1: only f left", l.Len())
	}
}

// A flood of distinct keys keeps the limiter at MaxKeys, and the keys it
// evicts are the least recently seen.
func TestKeyedRateLimiterBoundedMemory(t *testing.T) {
	l, _ := newTestKeyed(t, KeyedRateLimiterSettings{Rate: 1, Burst: 1, MaxKeys: 1000})
	flood := func(round int) {
		for i := range 100_000 {
			l.AllowKey("flood-" + strconv.Itoa(round) + "-" + strconv.Itoa(i))
		}
	}
	var before, after runtime.MemStats
	flood(0)
	runtime.GC()
	runtime.ReadMemStats(&before)
	flood(1)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if l.Len() != 1000 {
		t.Errorf("Len = %d after 200000 distinct keys, want MaxKeys 1000", l.Len())
	}
	entries := 0
	for i := range l.shards {
		entries += cap(l.shards[i].entries)
	}
	if entries > 2000 {
		t.Errorf("%d key slots allocated for at most 1000 keys", entries)
	}
	// A second flood of 100000 new keys reuses the first flood's room.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("heap grew by %d bytes over a second flood, want it bounded", grew)
	}
	// The newest key is remembered: its token is spent.
	if ok, _ := l.AllowKey("flood-1-99999"); ok {
		t.Error("the last key of the flood was forgotten")
	}
}

func TestKeyedRateLimiterEvictsLeastRecentlySeen(t *testing.T) {
	t.Parallel()
	// 64 keys fit one shard, so the eviction order is the shard's.
	l, _ := newTestKeyed(t, KeyedRateLimiterSettings{Rate: 1, Burst: 1, MaxKeys: 64})
	if len(l.shards) != 1 {
		t.Fatalf("%d shards for 64 keys, want 1", len(l.shards))
	}
	for i := range 64 {
		if ok, _ := l.AllowKey(strconv.Itoa(i)); !ok {
			t.Fatalf("key %d refused", i)
		}
	}
	l.AllowKey("0") // seen again: now the most recent
	l.AllowKey("new")
	if ok, _ := l.AllowKey("0"); ok {
		t.Error("key 0, seen recently, was evicted")
	}
	if ok, _ := l.AllowKey("1"); !ok {
		t.Error("key 1, the least recently seen, was not evicted")
	}
	if l.Len() != 64 {
		t.Errorf("Len = %d, want 64", l.Len())
	}
}

func TestKeyedRateLimiterKeyFromContext(t *testing.T) {
	t.Parallel()
	oneTenant := func(context.Context) string { return "tenant" }
	tests := []struct {
		name    string
		keyFunc func(context.Context) string
		ctxs    []context.Context
		want    []bool
	}{
		{"keys from the context", nil,
			[]context.Context{WithRateLimitKey(context.Background(), "a"), WithRateLimitKey(context.Background(), "b"), WithRateLimitKey(context.Background(), "a")},
			[]bool{true, true, false}},
		{"calls without a key share one bucket", nil,
			[]context.Context{context.Background(), context.Background()},
			[]bool{true, false}},
		{"custom key func", oneTenant,
			[]context.Context{WithRateLimitKey(context.Background(), "a"), WithRateLimitKey(context.Background(), "b")},
			[]bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, _ := newTestKeyed(t, KeyedRateLimiterSettings{Rate: 1, KeyFunc: tt.keyFunc})
			p := NewPipeline[int](l)
			for i, ctx := range tt.ctxs {
				_, err := p.Get(ctx, func(context.Context) (int, error) { return 1, nil })
				if got := err == nil; got != tt.want[i] {
					t.Errorf("call %d allowed = %v (%v), want %v", i, got, err, tt.want[i])
				}
				if err != nil && !errors.Is(err, ErrRateLimited) {
					t.Errorf("call %d: %v, want ErrRateLimited", i, err)
				}
			}
		})
	}
}

// The limiter copies a new key, so a caller may pass a string that aliases
// a buffer it reuses.
func TestKeyedRateLimiterCopiesKeys(t *testing.T) {
	t.Parallel()
	l, _ := newTestKeyed(t, KeyedRateLimiterSettings{Rate: 1})
	buf := []byte("alice")
	l.AllowKey(unsafeString(buf))
	copy(buf, "bobby")
	if ok, _ := l.AllowKey("alice"); ok {
		t.Error("alice's spent bucket was lost when the caller reused its buffer")
	}
}

// Goroutines racing on shared keys never get more than each key's burst.
// Run under -race.
func TestKeyedRateLimiterConcurrent(t *testing.T) {
	t.Parallel()
	const keys, burst = 100, 5
	var log eventLog
	l, _ := newTestKeyed(t, KeyedRateLimiterSettings{Rate: 1, Burst: burst, Observer: &log})
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				k := (i * (w + 1)) % keys
				if ok, _ := l.AllowKey("k" + strconv.Itoa(k)); ok {
					allowed[k].Add(1)
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for k := range allowed {
		if n := allowed[k].Load(); n > burst {
			t.Errorf("key %d: %d calls allowed, want at most %d", k, n, burst)
		}
		total += int(allowed[k].Load())
	}
	if rejected := len(log.drain()); total+rejected != 8*1000 {
		t.Errorf("%d allowed + %d rejection events, want %d calls", total, rejected, 8*1000)
	}
	if l.Len() != keys {
		t.Errorf("Len = %d, want %d", l.Len(), keys)
	}
}

func TestKeyedRateLimiterSuccessPathDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	l, err := NewKeyedRateLimiter(KeyedRateLimiterSettings{Rate: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprint("client-", 42)
	l.AllowKey(key)
	if a := testing.AllocsPerRun(1000, func() {
		if ok, _ := l.AllowKey(key); !ok {
			t.Fatal("refused")
		}
	}); a != 0 {
		t.Errorf("AllowKey of a known key: %v allocs per call, want 0", a)
	}
	pl := NewPipeline[int](l)
	ctx := WithRateLimitKey(context.Background(), key)
	fn := func(context.Context) (int, error) { return 1, nil }
	if a := testing.AllocsPerRun(1000, func() { _, _ = pl.Get(ctx, fn) }); a != 0 {
		t.Errorf("Run in a pipeline: %v allocs per call, want 0", a)
	}
}

// BenchmarkKeyedRateLimiter measures the success path over 1000 known
// keys, on the real clock.
//
//	go test -run='^$' -bench=KeyedRateLimiter -benchmem ./resilience/
func BenchmarkKeyedRateLimiter(b *testing.B) {
	l, err := NewKeyedRateLimiter(KeyedRateLimiterSettings{Rate: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = "client-" + strconv.Itoa(i)
	}
	benchLimits(b, func() error { return l.AcquireKey(keys[rand.IntN(len(keys))]) })
}
