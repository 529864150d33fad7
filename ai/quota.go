package ai

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/relia-dev/relia/clock"
)

// Quota names, as 429 answers, records and the usage listing name them.
const (
	QuotaTokensPerMinute   = "tokensPerMinute"
	QuotaRequestsPerMinute = "requestsPerMinute"
	QuotaCostPerDay        = "costPerDay"
	QuotaCostPerMonth      = "costPerMonth"
)

// nanoUSD is the unit cost counters count in, so that counters stay
// integers in Redis.
const nanoUSD = 1e9

// quotas counts tenants' use in fixed windows (the UTC minute, day and
// month) and admits a call while every quota that applies has room.
//
// A call reserves what is known before it: one request, its prompt's
// estimated tokens and their cost. After the call the reservation is
// settled to the provider's reported usage, output included. So a quota
// is exceeded by at most the output of the calls in flight when it
// filled, which is what keeps a run within a few percent of the limit
// without refusing calls that would have fitted.
//
// Counters live in memory, or in Redis where every replica shares them
// (one Lua script checks and reserves all of a call's counters
// atomically).
type quotas struct {
	clock   clock.Clock
	prefix  string
	rdb     redis.UniversalClient
	own     bool
	open    bool // fail open when Redis is unreachable
	timeout time.Duration

	mu    sync.Mutex
	local map[string]*localCounter
}

type localCounter struct {
	used    int64
	expires time.Time
}

func newQuotas(cfg *Config, rdb redis.UniversalClient, c clock.Clock) (*quotas, error) {
	q := &quotas{clock: clock.OrReal(c), local: map[string]*localCounter{}}
	if err := q.reload(cfg); err != nil {
		return nil, err
	}
	if r := cfg.Spec.QuotaStore.Redis; r != nil && rdb == nil {
		q.rdb = redis.NewClient(&redis.Options{Addr: r.Address, DB: r.DB, ContextTimeoutEnabled: true})
		q.own = true
	} else {
		q.rdb = rdb
	}
	return q, nil
}

func (q *quotas) reload(cfg *Config) error {
	q.prefix = "relia:aiq:" + cfg.Metadata.Name + ":"
	if r := cfg.Spec.QuotaStore.Redis; r != nil {
		q.open = r.OnUnreachable == "open"
		q.timeout = orDefault(r.Timeout, 50*time.Millisecond)
	} else if q.own {
		return errors.New("quotaStore: a reload cannot move quotas out of Redis; restart instead")
	}
	return nil
}

func (q *quotas) close() error {
	if q.own && q.rdb != nil {
		return q.rdb.Close()
	}
	return nil
}

// counter is one quota counter a call touches.
type counter struct {
	quota   string
	key     string
	amount  int64
	limit   int64
	resetAt time.Time
}

// reservation is what a call reserved, settled after it.
type reservation struct {
	q        *quotas
	counters []counter
	tokens   int64
	costNano int64
}

// windowOf returns the window a quota counts in: its id and when it
// ends.
func windowOf(quota string, now time.Time) (string, time.Time) {
	now = now.UTC()
	switch quota {
	case QuotaCostPerDay:
		start := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		return start.Format("2006-01-02"), start.AddDate(0, 0, 1)
	case QuotaCostPerMonth:
		start := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start.Format("2006-01"), start.AddDate(0, 1, 0)
	}
	start := now.Truncate(time.Minute)
	return start.Format("2006-01-02T15:04"), start.Add(time.Minute)
}

// counters returns the counters of the caller's quotas that apply to
// model m, with the amounts a call of the given prompt tokens and cost
// reserves.
func (q *quotas) counters(c *caller, m *Model, tokens int64, costNano int64) []counter {
	if c.tenant == nil {
		return nil
	}
	now := q.clock.Now()
	var out []counter
	for _, qu := range c.tenant.cfg.Quotas {
		if !quotaApplies(qu, m) {
			continue
		}
		base := "{" + c.tenant.cfg.Name + "}"
		if qu.PerKey {
			base += ":key=" + c.key
		}
		if qu.Model != "" {
			base += ":model=" + m.Name
		}
		add := func(name string, amount, limit int64) {
			if limit <= 0 {
				return
			}
			w, reset := windowOf(name, now)
			out = append(out, counter{quota: name, key: q.prefix + base + ":" + name + ":" + w, amount: amount, limit: limit, resetAt: reset})
		}
		add(QuotaRequestsPerMinute, 1, qu.RequestsPerMinute)
		add(QuotaTokensPerMinute, tokens, qu.TokensPerMinute)
		add(QuotaCostPerDay, costNano, int64(math.Round(qu.CostPerDay*nanoUSD)))
		add(QuotaCostPerMonth, costNano, int64(math.Round(qu.CostPerMonth*nanoUSD)))
	}
	return out
}

// quotaApplies reports whether quota qu counts calls of model m.
func quotaApplies(qu Quota, m *Model) bool {
	return qu.Model == "" || qu.Model == m.Name || contains(m.Aliases, qu.Model)
}

// needEstimate reports whether a call of model m by c reserves its
// prompt's tokens or their cost: only then is the prompt counted before
// the call.
func (q *quotas) needEstimate(c *caller, m *Model) bool {
	if c.tenant == nil {
		return false
	}
	for _, qu := range c.tenant.cfg.Quotas {
		if quotaApplies(qu, m) && (qu.TokensPerMinute > 0 || qu.CostPerDay > 0 || qu.CostPerMonth > 0) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// admit reserves a call's prompt against the caller's quotas, or refuses
// it naming the first quota without room and when it resets.
func (q *quotas) admit(ctx context.Context, c *caller, m *Model, promptTokens int, promptCost float64) (*reservation, *apiError) {
	costNano := int64(math.Round(promptCost * nanoUSD))
	cs := q.counters(c, m, int64(promptTokens), costNano)
	if len(cs) == 0 {
		return nil, nil // nothing to settle: a nil reservation settles as none
	}
	res := &reservation{q: q, counters: cs, tokens: int64(promptTokens), costNano: costNano}
	var full int
	var err error
	if q.rdb != nil {
		full, err = q.reserveRedis(ctx, cs)
	} else {
		full = q.reserveLocal(cs)
	}
	if err != nil {
		if q.open {
			return &reservation{}, nil
		}
		return nil, &apiError{status: http.StatusServiceUnavailable, typ: "server_error", code: "quota_unavailable", reason: "quota_unavailable", retryAfter: time.Second,
			message: "the quota store cannot be reached and quotas fail closed"}
	}
	if full > 0 {
		cn := cs[full-1]
		wait := cn.resetAt.Sub(q.clock.Now())
		scope := "tenant " + c.tenant.cfg.Name
		if cn.amount > cn.limit {
			return nil, &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "quota_exceeded", reason: "quota_exceeded", quota: cn.quota, resetAt: cn.resetAt,
				message: fmt.Sprintf("this call alone is larger than the %s quota of %s (%s)", cn.quota, scope, limitText(cn))}
		}
		return nil, &apiError{status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "quota_exceeded", reason: "quota_exceeded", quota: cn.quota, resetAt: cn.resetAt, retryAfter: wait,
			message: fmt.Sprintf("the %s quota of %s (%s) is used up; it resets at %s", cn.quota, scope, limitText(cn), cn.resetAt.UTC().Format(time.RFC3339))}
	}
	return res, nil
}

func limitText(c counter) string {
	switch c.quota {
	case QuotaCostPerDay, QuotaCostPerMonth:
		return fmt.Sprintf("%.2f USD", float64(c.limit)/nanoUSD)
	case QuotaRequestsPerMinute:
		return fmt.Sprintf("%d requests", c.limit)
	}
	return fmt.Sprintf("%d tokens", c.limit)
}

// reserveLocal checks and takes every counter at once; it returns the
// 1-based index of the first counter without room, 0 when all had room.
func (q *quotas) reserveLocal(cs []counter) int {
	now := q.clock.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.local) > 4096 {
		for k, lc := range q.local {
			if !now.Before(lc.expires) {
				delete(q.local, k)
			}
		}
	}
	for i, c := range cs {
		used := int64(0)
		if lc := q.local[c.key]; lc != nil && now.Before(lc.expires) {
			used = lc.used
		}
		if used+c.amount > c.limit {
			return i + 1
		}
	}
	for _, c := range cs {
		lc := q.local[c.key]
		if lc == nil || !now.Before(lc.expires) {
			lc = &localCounter{expires: c.resetAt}
			q.local[c.key] = lc
		}
		lc.used += c.amount
	}
	return 0
}

// reserveScript checks and takes a call's counters in one step. KEYS are
// the counters; ARGV the amount, limit and time to live in milliseconds
// of each. It returns the 1-based index of the first counter without
// room, or 0 after taking them all.
var reserveScript = redis.NewScript(`
for i = 1, #KEYS do
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  if used + tonumber(ARGV[3*i-2]) > tonumber(ARGV[3*i-1]) then return i end
end
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[3*i-2])
  redis.call('PEXPIRE', KEYS[i], ARGV[3*i])
end
return 0
`)

func (q *quotas) reserveRedis(ctx context.Context, cs []counter) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	keys := make([]string, len(cs))
	args := make([]any, 0, 3*len(cs))
	now := q.clock.Now()
	for i, c := range cs {
		keys[i] = c.key
		args = append(args, c.amount, c.limit, ttlMillis(c.resetAt, now))
	}
	n, err := reserveScript.Run(ctx, q.rdb, keys, args...).Int()
	return n, err
}

// ttlMillis keeps a counter a minute past its window, so a late
// settlement still finds it.
func ttlMillis(reset, now time.Time) int64 {
	return (reset.Sub(now) + time.Minute).Milliseconds()
}

// settle corrects a reservation to the call's reported usage.
func (r *reservation) settle(ctx context.Context, u Usage, cost float64) {
	if r == nil || len(r.counters) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx) // the call's end, a cancellation included, is counted
	dTokens := int64(u.Total()) - r.tokens
	dCost := int64(math.Round(cost*nanoUSD)) - r.costNano
	q := r.q
	deltas := make([]int64, len(r.counters))
	for i, c := range r.counters {
		switch c.quota {
		case QuotaTokensPerMinute:
			deltas[i] = dTokens
		case QuotaCostPerDay, QuotaCostPerMonth:
			deltas[i] = dCost
		}
	}
	if q.rdb == nil {
		q.mu.Lock()
		for i, c := range r.counters {
			if lc := q.local[c.key]; lc != nil {
				lc.used += deltas[i]
			}
		}
		q.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(ctx, q.timeout)
	defer cancel()
	pipe := q.rdb.Pipeline()
	now := q.clock.Now()
	for i, c := range r.counters {
		if deltas[i] != 0 {
			pipe.IncrBy(ctx, c.key, deltas[i])
			pipe.PExpire(ctx, c.key, time.Duration(ttlMillis(c.resetAt, now))*time.Millisecond)
		}
	}
	pipe.Exec(ctx) // a lost correction errs by one call's output at most
}

// QuotaUsage is one quota's use in its current window.
type QuotaUsage struct {
	Tenant string `json:"tenant"`
	Key    string `json:"key,omitempty"`
	Model  string `json:"model,omitempty"`
	Quota  string `json:"quota"`
	// Used and Limit are tokens, requests, or USD for cost quotas.
	Used    float64   `json:"used"`
	Limit   float64   `json:"limit"`
	ResetAt time.Time `json:"resets_at"`
}

// Usage lists every tenant's use of its quotas in their current windows
// (per-key quotas only for keys that have called).
func (s *Service) Usage(ctx context.Context) ([]QuotaUsage, error) {
	st := s.state.Load()
	q := s.quotas
	var out []QuotaUsage
	for _, t := range st.tenants {
		keys := []string{""}
		for _, name := range t.keyNames {
			keys = append(keys, name)
		}
		for _, qu := range t.cfg.Quotas {
			for _, k := range keys {
				if qu.PerKey != (k != "") {
					continue
				}
				m := &Model{Name: qu.Model}
				if qu.Model != "" {
					m, _ = st.catalog.Lookup(qu.Model)
				}
				cq := t.cfg
				one := *cq
				one.Quotas = []Quota{qu}
				for _, c := range q.counters(&caller{tenant: &tenantState{cfg: &one}, key: k}, m, 0, 0) {
					used, err := q.read(ctx, c.key)
					if err != nil {
						return nil, err
					}
					u := QuotaUsage{Tenant: t.cfg.Name, Key: k, Model: qu.Model, Quota: c.quota, Used: float64(used), Limit: float64(c.limit), ResetAt: c.resetAt}
					if c.quota == QuotaCostPerDay || c.quota == QuotaCostPerMonth {
						u.Used, u.Limit = u.Used/nanoUSD, u.Limit/nanoUSD
					}
					out = append(out, u)
				}
			}
		}
	}
	return out, nil
}

func (q *quotas) read(ctx context.Context, key string) (int64, error) {
	if q.rdb == nil {
		q.mu.Lock()
		defer q.mu.Unlock()
		if lc := q.local[key]; lc != nil && q.clock.Now().Before(lc.expires) {
			return lc.used, nil
		}
		return 0, nil
	}
	v, err := q.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}
