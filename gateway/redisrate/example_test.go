package redisrate_test

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/relia-dev/relia/gateway/redisrate"
)

// Every replica builds the same limiter over its own client of the shared
// Redis; the limit they enforce is one, across all of them.
func ExampleLimiter_Allow() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	limiter, err := redisrate.New(client, redisrate.Settings{
		Name:          "orders",
		Rate:          50,
		Burst:         100,
		Prefix:        "relia:rl:orders:",
		OnUnreachable: redisrate.FailLocal,
		LocalRate:     25, // two replicas: half the limit each while Redis is away
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := limiter.Allow(context.Background(), "tenant-42")
	if err != nil {
		return // the caller's context ended
	}
	if !d.Allowed {
		fmt.Println("429", d.Reason, "retry after", d.RetryAfter)
	}
}

// A gateway config names the policy for an unreachable Redis in words.
func ExampleParseUnreachable() {
	for _, s := range []string{"open", "Closed", "maybe"} {
		u, err := redisrate.ParseUnreachable(s)
		fmt.Println(u, err)
	}
	// Output:
	// open <nil>
	// closed <nil>
	// Unreachable(0) on unreachable "maybe": must be open, closed or local
}
