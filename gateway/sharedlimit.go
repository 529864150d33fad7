package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/relia-dev/relia/gateway/redisrate"
)

// redisClients holds one client per Redis server the config names, shared
// by every route and config generation that uses it, so that a reload
// keeps the connections. They close at Shutdown.
type redisClients struct {
	mu sync.Mutex
	m  map[redisKey]*redis.Client
}

type redisKey struct {
	addr, passwordFile string
	db                 int
}

// client returns the client of the server rs names, making it once.
func (rc *redisClients) client(rs *RedisStore) (*redis.Client, error) {
	k := redisKey{rs.Address, rs.PasswordFile, rs.DB}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if c := rc.m[k]; c != nil {
		return c, nil
	}
	o := &redis.Options{Addr: rs.Address, DB: rs.DB, ContextTimeoutEnabled: true}
	if rs.PasswordFile != "" {
		b, err := os.ReadFile(rs.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading redis password: %w", err)
		}
		o.Password = string(trimSecret(b))
	}
	c := redis.NewClient(o)
	if rc.m == nil {
		rc.m = map[redisKey]*redis.Client{}
	}
	rc.m[k] = c
	return c, nil
}

func (rc *redisClients) close() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for k, c := range rc.m {
		c.Close()
		delete(rc.m, k)
	}
}

// sharedLimit is a route's rate limit kept in Redis.
type sharedLimit struct {
	lim    *redisrate.Limiter
	client *redis.Client
	addr   string
	closed bool // fails closed: Redis down makes the gateway not ready
}

// buildSharedLimit makes the Redis-backed limiter of route r. Its keys
// carry the gateway's and the route's names, so gateways with the same
// name share one bucket per route and key.
func (g *Gateway) buildSharedLimit(gwName string, r Route) (*sharedLimit, error) {
	rl := r.RateLimit
	c, err := g.redis.client(rl.Redis)
	if err != nil {
		return nil, err
	}
	u, err := redisrate.ParseUnreachable(rl.OnUnreachable)
	if err != nil {
		return nil, err
	}
	log := g.log
	lim, err := redisrate.New(c, redisrate.Settings{
		Name: r.Name, Rate: rl.Rate, Burst: rl.Burst, OnUnreachable: u, Timeout: rl.Redis.Timeout,
		Prefix: redisrate.DefaultPrefix + gwName + ":" + r.Name + ":", Clock: g.clock, Observer: g.metrics.obs,
		OnStateChange: func(degraded bool, err error) {
			if degraded {
				log.Warn("rate-limit store unreachable", "route", r.Name, "redis", rl.Redis.Address, "on_unreachable", u.String(), "error", err)
			} else {
				log.Info("rate-limit store reachable again", "route", r.Name, "redis", rl.Redis.Address)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("route %s: rate limit: %w", r.Name, err)
	}
	return &sharedLimit{lim: lim, client: c, addr: rl.Redis.Address, closed: u == redisrate.FailClosed}, nil
}

// allowShared asks the route's Redis limiter; on refusal it writes the
// 429 (or 503 when Redis is down and the limit fails closed) and reports
// false.
func (g *Gateway) allowShared(sl *sharedLimit, key string, x *exchange) bool {
	// The limiter bounds the call by its own timeout.
	d, err := sl.lim.Allow(x.req.ctx, key)
	if err != nil {
		g.reject(x, 499, "client", "client_closed", 0)
		return false
	}
	switch {
	case d.Allowed:
		g.metrics.rateDecision(x.route.name, decisionAllowed)
		return true
	case d.Reason == redisrate.ReasonUnavailable:
		g.metrics.rateDecision(x.route.name, decisionUnavailable)
		g.reject(x, http.StatusServiceUnavailable, "ratelimit", d.Reason, d.RetryAfter)
	default:
		g.metrics.rateDecision(x.route.name, decisionLimited)
		g.reject(x, http.StatusTooManyRequests, "ratelimit", d.Reason, d.RetryAfter)
	}
	return false
}

// redisReady pings every Redis the config's rate limits use. Each one's
// state goes into checks; an unreachable one makes the gateway not ready
// only when a limit on it fails closed, since a fail-open limit serves on
// without Redis and pulling every replica out of its balancer at once
// would turn a Redis outage into a full one.
func (st *state) redisReady(ctx context.Context, checks map[string]string) bool {
	ready := true
	seen := map[string]bool{}
	for _, r := range st.routes {
		sl := r.shared
		if sl == nil {
			continue
		}
		name := "redis:" + sl.addr
		if !seen[name] {
			seen[name] = true
			pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			err := sl.client.Ping(pctx).Err()
			cancel()
			if err != nil {
				checks[name] = "unreachable: " + err.Error()
			} else {
				checks[name] = "ok"
			}
		}
		if sl.closed && strings.HasPrefix(checks[name], "unreachable") {
			ready = false
			checks[name] += " (route " + r.name + " fails closed)"
		}
	}
	return ready
}
