package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/fdtable"
	"github.com/relia-dev/relia/internal/gcfloor"
	"github.com/relia-dev/relia/internal/netyield"
)

func init() { register(newGatewayCmd) }

func newGatewayCmd() *cobra.Command {
	var path string
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run the resilient gateway: a reverse proxy that applies resilience policies at the edge",
		Long: `relia gateway runs a reverse proxy configured by a kind: Gateway document:
routes, upstream pools with health checks and outlier ejection, and per-route
timeouts, retries with a budget, hedging, breakers, bulkheads, rate limits
(per replica or shared through Redis), API-key and JWT authentication, a
response cache, fallbacks and fault injection. With OTEL_EXPORTER_OTLP_ENDPOINT
set it exports OpenTelemetry traces over OTLP (HTTP, or gRPC with
OTEL_EXPORTER_OTLP_PROTOCOL=grpc). SIGHUP, POST /reload on the admin API, or a change to the
file (--watch) reloads the config atomically; an invalid config is rejected
and the old one keeps serving. SIGINT or SIGTERM drains and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if path == "" {
				return badInput(errors.New("--config is required"))
			}
			cfg, err := gateway.LoadFile(path)
			if err != nil {
				return badInput(err)
			}
			defer gcfloor.Keep(gcfloor.Floor)()
			defer netyield.PollDuringSweeps()() // the poller's rounds while the heap is swept, on one processor
			fdtable.Grow(fdtable.Gateway)       // best effort: a table that grows under load stalls an accept
			g, err := gateway.New(cfg, gateway.Options{ConfigPath: path, WatchInterval: watch})
			if err != nil {
				return runtimeErr(err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() { // ends with the command
				for {
					select {
					case <-hup:
						g.ReloadFile()
					case <-ctx.Done():
						return
					}
				}
			}()
			if err := g.Start(); err != nil {
				return runtimeErr(err)
			}
			for _, l := range cfg.Spec.Listeners {
				name := l.Name
				if name == "" {
					name = l.Address
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "relia gateway: listening on %s (%s)\n", g.Addr(name), name)
			}
			if a := g.AdminAddr(); a != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "relia gateway: admin API on http://%s\n", a)
			}
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), drainTimeout(g))
			defer cancel()
			if err := g.Shutdown(sctx); err != nil {
				return runtimeErr(fmt.Errorf("draining: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "", "gateway config file (kind: Gateway)")
	cmd.Flags().DurationVar(&watch, "watch", 2*time.Second, "poll the config file this often and reload it when it changes; 0 turns it off")
	cmd.AddCommand(newGatewayValidateCmd(), newGatewaySchemaCmd())
	return cmd
}

func drainTimeout(g *gateway.Gateway) time.Duration {
	if d := g.Config().Spec.Server.DrainTimeout; d > 0 {
		return d
	}
	return gateway.DefaultDrainTimeout
}

func newGatewayValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a gateway config and exit (2 when it is invalid)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := gateway.LoadFile(args[0])
			if err != nil {
				return badInput(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d listeners, %d upstreams, %d routes\n",
				args[0], len(cfg.Spec.Listeners), len(cfg.Spec.Upstreams), len(cfg.Spec.Routes))
			return nil
		},
	}
}

func newGatewaySchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of gateway configs, for editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := gateway.JSONSchema()
			if err != nil {
				return runtimeErr(err)
			}
			return writeOut(cmd, "", data)
		},
	}
}
