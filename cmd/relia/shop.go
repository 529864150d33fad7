package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/shop"
)

func init() { register(newShopCmd) }

// The shop's documented addresses: the ones examples/ and docs/ send
// load to.
const (
	defaultShopAddr  = "127.0.0.1:8080"
	defaultShopAdmin = "127.0.0.1:9901"
)

// shopFlags are relia shop's flags.
type shopFlags struct {
	addr         string
	admin        string
	seed         uint64
	noResilience bool
	noLatency    bool
	replicas     int
}

func newShopCmd() *cobra.Command {
	var f shopFlags
	cmd := &cobra.Command{
		Use:   "shop",
		Short: "Serve the demo shop behind the relia gateway on fixed loopback ports, as a target for load and experiments",
		Long: `relia shop serves the demo shop that relia demo embeds (catalog, users,
payments with a flaky processor, recommendations with a fallback), behind
the relia gateway, until Ctrl-C or SIGTERM. It is the target the examples
and the docs send load to:

  relia shop                                     # http://127.0.0.1:8080, admin API on 127.0.0.1:9901
  relia load examples/scenario.yaml --duration 10s

Routes, on the gateway's address:

  GET  /api/products?page=N, /api/products/{id}    catalog (500 products, 20 a page)
  POST /api/login {"userId": 1..1000, "password": "demo"}   a bearer token
  GET  /api/users/{id}                             with the token
  POST /api/payments {"amountCents", "currency"}   with the token and an Idempotency-Key
  GET  /api/recommendations/{userId}, /api/popular

The services answer with seeded service times of a few milliseconds (off
with --no-latency); the gateway's retries, breakers, health checks and
fallbacks are on unless --no-resilience. The admin API (/upstreams,
/metrics) shows the pools; --admin-addr off turns it off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runShop(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", defaultShopAddr, "address of the shop's gateway, where the load goes")
	fl.StringVar(&f.admin, "admin-addr", defaultShopAdmin, "address of the gateway's admin API; off turns it off")
	fl.Uint64Var(&f.seed, "seed", 42, "seed of the shop's data, service times and failures")
	fl.BoolVar(&f.noResilience, "no-resilience", false, "route without the gateway's retries, breakers, health checks and fallbacks")
	fl.BoolVar(&f.noLatency, "no-latency", false, "answer at once instead of with the services' seeded service times")
	fl.IntVar(&f.replicas, "replicas", 0, "replicas of every service but the processor (default 3 of the catalog, 1 of the others)")
	return cmd
}

func runShop(cmd *cobra.Command, f shopFlags) error {
	if f.replicas < 0 {
		return badInput(fmt.Errorf("--replicas %d is negative", f.replicas))
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o := shop.Options{Seed: f.seed, Latency: !f.noLatency, Resilient: !f.noResilience}
	if f.replicas > 0 {
		o.Replicas = map[string]int{}
		for _, s := range shop.Services {
			if s != shop.ServiceProcessor {
				o.Replicas[s] = f.replicas
			}
		}
	}
	sh, err := shop.Start(ctx, o)
	if err != nil {
		return badInput(err)
	}
	defer sh.Close()
	cfg, err := gateway.Parse("relia shop", sh.GatewayConfig())
	if err != nil {
		return runtimeErr(err)
	}
	cfg.Spec.Listeners[0].Address = f.addr
	cfg.Spec.Admin.Address = f.admin
	gw, err := gateway.New(cfg, gateway.Options{AccessLog: io.Discard})
	if err != nil {
		return badInput(err)
	}
	if err := gw.Start(); err != nil {
		// Most often the port is taken: a flag fixes it.
		return badInput(fmt.Errorf("starting the shop's gateway: %w (--addr and --admin-addr choose other ports)", err))
	}
	stderr := cmd.ErrOrStderr()
	resilience := "on"
	if f.noResilience {
		resilience = "off (--no-resilience)"
	}
	fmt.Fprintf(stderr, "relia shop: listening on http://%s (routes under /api), resilience %s, seed %d\n", gw.Addr("public"), resilience, f.seed)
	if a := gw.AdminAddr(); a != "" {
		fmt.Fprintf(stderr, "relia shop: admin API on http://%s\n", a)
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw.Shutdown(sctx); err != nil {
		return runtimeErr(fmt.Errorf("draining: %w", err))
	}
	return nil
}
