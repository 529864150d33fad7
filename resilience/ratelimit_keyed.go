package resilience

import (
	"context"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
)

// DefaultKeyedRateLimiterMaxKeys is how many keys a KeyedRateLimiter keeps
// when KeyedRateLimiterSettings.MaxKeys is left zero: a few megabytes at
// most, enough for the active clients of a busy gateway.
const DefaultKeyedRateLimiterMaxKeys = 10000

// maxKeyedRateLimiterKeys bounds MaxKeys so that key slots fit an int32.
const maxKeyedRateLimiterKeys = 1 << 30

// KeyedRateLimiterSettings configures a KeyedRateLimiter. Every zero value
// means the default documented on its field, except Rate, which has none;
// a value out of range makes NewKeyedRateLimiter fail.
type KeyedRateLimiterSettings struct {
	// Name identifies the limiter in errors, events and metrics.
	Name string
	// Rate is how many calls per second each key may make in the long
	// run. It must be positive and at most 1e9.
	Rate float64
	// Burst is how many calls a key may make at once after a quiet spell.
	// Zero means one second's worth, ceil(Rate), and at least 1; negative
	// is an error.
	Burst int
	// MaxKeys bounds how many keys are remembered at once, and so the
	// memory the limiter uses. A new key beyond it evicts the key seen
	// least recently. Zero means DefaultKeyedRateLimiterMaxKeys; negative
	// is an error.
	MaxKeys int
	// IdleTTL is how long a key may go unseen before it is forgotten.
	// Zero means Burst/Rate, the time its bucket takes to refill from
	// empty: by then its bucket is full whatever it held, and a full
	// bucket decides exactly as a new one does, so forgetting the key
	// changes no decision. A shorter IdleTTL trades that exactness for
	// memory: a key forgotten early comes back with a full bucket.
	// Negative is an error.
	IdleTTL time.Duration
	// KeyFunc returns the key of a call run as a Policy. Nil means
	// RateLimitKey: the key set with WithRateLimitKey. Calls without a key
	// share the bucket of the empty key.
	KeyFunc func(ctx context.Context) string
	// Clock is the source of time; nil means the real clock.
	Clock clock.Clock
	// Observer receives EventRejected with reason "rate_limited" for every
	// call refused, by any method; nil means none.
	Observer Observer
}

// KeyedRateLimiter keeps one token bucket per key (an API key, a client
// IP), each as a RateLimiter's, so one noisy client exhausts its own
// bucket and nobody else's. Calls beyond a key's rate are refused at once,
// with the time until its next token as RetryAfter; a keyed limiter never
// waits.
//
// Memory is bounded by MaxKeys. Keys live in shards, each with its own
// lock and its keys in least-recently-seen order. Every call forgets up to
// two keys of its shard unseen for IdleTTL, so idle keys go without a
// background goroutine; a new key in a shard at its share of MaxKeys
// evicts the shard's least recently seen key. Forgetting an idle key is
// safe because by IdleTTL its bucket is full, and a full bucket is the
// same as none. Evicting a key before then makes the limiter more lenient
// with that key, never stricter: under a flood of distinct keys, the keys
// seen least recently lose what they had spent.
//
// A KeyedRateLimiter is a Policy for a Pipeline, taking each call's key
// from KeyFunc; AllowKey and AcquireKey serve callers that do not wrap
// their call in a function. It is safe for concurrent use. A call with a
// key already known takes one shard lock and no allocation; a new key
// copies the key string, so callers may pass strings that alias reused
// buffers.
type KeyedRateLimiter struct {
	name     string
	bucket   tokenBucket
	idle     int64
	keyFunc  func(context.Context) string
	clock    clock.Clock
	observer Observer
	epoch    time.Time
	seed     maphash.Seed
	mask     uint64
	shards   []keyShard
}

// keyShard holds some of a KeyedRateLimiter's keys: a map from key to a
// slot in entries, and the slots in use threaded into a list from the most
// recently seen (head) to the least (tail). Freed slots form a list
// through next. noKey marks the ends of the lists.
type keyShard struct {
	mu         sync.Mutex
	index      map[string]int32
	entries    []keyEntry
	head, tail int32
	free       int32
	limit      int // most keys this shard may hold
	// Padding keeps neighbouring shards' locks off each other's cache
	// lines.
	_ [64]byte
}

type keyEntry struct {
	key        string
	tat        int64 // the bucket's state, as RateLimiter.tat
	last       int64 // when the key was last seen
	prev, next int32
}

const noKey = -1

var _ Policy = (*KeyedRateLimiter)(nil)

// NewKeyedRateLimiter returns a KeyedRateLimiter that knows no key yet, or
// an error naming the first setting out of range.
func NewKeyedRateLimiter(s KeyedRateLimiterSettings) (*KeyedRateLimiter, error) {
	tb, err := newTokenBucket(s.Rate, s.Burst)
	if err == nil {
		err = s.fill(tb)
	}
	if err != nil {
		if s.Name != "" {
			return nil, fmt.Errorf("keyed rate limiter %s: %w", s.Name, err)
		}
		return nil, fmt.Errorf("keyed rate limiter: %w", err)
	}
	c := clock.OrReal(s.Clock)
	l := &KeyedRateLimiter{
		name:     s.Name,
		bucket:   tb,
		idle:     int64(s.IdleTTL),
		keyFunc:  s.KeyFunc,
		clock:    c,
		observer: s.Observer,
		epoch:    c.Now(),
		seed:     maphash.MakeSeed(),
	}
	// About 64 keys per shard at least, so that a small MaxKeys is not cut
	// into shares too small to hold a few busy keys each, and at most 64
	// shards, which is plenty to keep cores from queueing on one lock.
	n := 1
	for n < 64 && n*2*64 <= s.MaxKeys {
		n *= 2
	}
	l.mask = uint64(n - 1)
	l.shards = make([]keyShard, n)
	for i := range l.shards {
		sh := &l.shards[i]
		sh.index = make(map[string]int32)
		sh.head, sh.tail, sh.free = noKey, noKey, noKey
		sh.limit = s.MaxKeys / n
		if i < s.MaxKeys%n {
			sh.limit++
		}
	}
	return l, nil
}

// fill validates s beyond the bucket and puts the defaults into its zero
// fields.
func (s *KeyedRateLimiterSettings) fill(tb tokenBucket) error {
	switch {
	case s.MaxKeys < 0 || s.MaxKeys > maxKeyedRateLimiterKeys:
		return fmt.Errorf("max keys %d: must lie in [0, %d]", s.MaxKeys, maxKeyedRateLimiterKeys)
	case s.IdleTTL < 0:
		return fmt.Errorf("idle TTL %s: must not be negative", s.IdleTTL)
	}
	if s.MaxKeys == 0 {
		s.MaxKeys = DefaultKeyedRateLimiterMaxKeys
	}
	if s.IdleTTL == 0 {
		s.IdleTTL = tb.idleFull()
	}
	if s.KeyFunc == nil {
		s.KeyFunc = RateLimitKey
	}
	return nil
}

// rateLimitKey is the context key of WithRateLimitKey.
type rateLimitKey struct{}

// WithRateLimitKey returns a context that carries key as the rate-limit
// key of calls made under it, for a KeyedRateLimiter in a pipeline whose
// KeyFunc is the default.
func WithRateLimitKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, rateLimitKey{}, key)
}

// RateLimitKey returns the key set on ctx with WithRateLimitKey, or "" if
// there is none. It is KeyedRateLimiterSettings.KeyFunc's default.
func RateLimitKey(ctx context.Context) string {
	k, _ := ctx.Value(rateLimitKey{}).(string)
	return k
}

// Name returns the limiter's name.
func (l *KeyedRateLimiter) Name() string { return l.name }

// Len returns how many keys the limiter remembers.
func (l *KeyedRateLimiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.index)
		sh.mu.Unlock()
	}
	return n
}

// AllowKey takes one token from key's bucket and reports whether there was
// one; when there was not, retryAfter is the time until there will be.
func (l *KeyedRateLimiter) AllowKey(key string) (ok bool, retryAfter time.Duration) {
	wait, ok := l.take(key)
	if !ok {
		l.rejected()
		return false, time.Duration(wait)
	}
	return true, 0
}

// AcquireKey is AllowKey returning a refusal as a *RejectedError matching
// ErrRateLimited, with reason "rate_limited" and the time until key's next
// token as RetryAfter, ready for a proxy to render.
func (l *KeyedRateLimiter) AcquireKey(key string) error {
	wait, ok := l.take(key)
	if !ok {
		l.rejected()
		return &RejectedError{Policy: "ratelimit", Name: l.name, Reason: "rate_limited", RetryAfter: time.Duration(wait), Sentinel: ErrRateLimited}
	}
	return nil
}

// Run implements Policy: it calls next when the bucket of the call's key,
// as KeyFunc returns it, has a token.
func (l *KeyedRateLimiter) Run(ctx context.Context, next Next) error {
	if err := l.AcquireKey(l.keyFunc(ctx)); err != nil {
		return err
	}
	return next.Call(ctx)
}

func (l *KeyedRateLimiter) rejected() {
	if l.observer != nil {
		l.observer.Observe(Event{Kind: EventRejected, Policy: "ratelimit", Name: l.name, Reason: "rate_limited"})
	}
}

// take takes one token from key's bucket, as RateLimiter.take does.
func (l *KeyedRateLimiter) take(key string) (wait int64, ok bool) {
	now := int64(l.clock.Since(l.epoch))
	sh := &l.shards[maphash.String(l.seed, key)&l.mask]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now, l.idle, 2)
	i, found := sh.index[key]
	if !found {
		i = sh.add(key, now)
	} else if i != sh.head {
		sh.unlink(i)
		sh.pushFront(i)
	}
	e := &sh.entries[i]
	e.last = now
	e.tat, wait, ok = l.bucket.take(e.tat, now, 1, 0)
	return wait, ok
}

// expire forgets up to n keys at the tail unseen for idle.
func (sh *keyShard) expire(now, idle int64, n int) {
	for ; n > 0 && sh.tail != noKey && now-sh.entries[sh.tail].last >= idle; n-- {
		sh.remove(sh.tail)
	}
}

// add remembers key with a full bucket at the head of the list, evicting
// the least recently seen key when the shard is at its limit, and returns
// its slot.
func (sh *keyShard) add(key string, now int64) int32 {
	if len(sh.index) >= sh.limit {
		sh.remove(sh.tail)
	}
	var i int32
	if sh.free != noKey {
		i = sh.free
		sh.free = sh.entries[i].next
	} else {
		i = int32(len(sh.entries))
		sh.entries = append(sh.entries, keyEntry{})
	}
	// A copy, so that a key aliasing a caller's reused buffer stays
	// intact, and a small key does not pin a large buffer it was cut from.
	key = strings.Clone(key)
	sh.entries[i] = keyEntry{key: key, tat: now}
	sh.index[key] = i
	sh.pushFront(i)
	return i
}

// remove forgets the key in slot i and frees the slot.
func (sh *keyShard) remove(i int32) {
	sh.unlink(i)
	delete(sh.index, sh.entries[i].key)
	sh.entries[i] = keyEntry{next: sh.free}
	sh.free = i
}

func (sh *keyShard) pushFront(i int32) {
	e := &sh.entries[i]
	e.prev, e.next = noKey, sh.head
	if sh.head != noKey {
		sh.entries[sh.head].prev = i
	} else {
		sh.tail = i
	}
	sh.head = i
}

func (sh *keyShard) unlink(i int32) {
	e := &sh.entries[i]
	if e.prev != noKey {
		sh.entries[e.prev].next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != noKey {
		sh.entries[e.next].prev = e.prev
	} else {
		sh.tail = e.prev
	}
}
