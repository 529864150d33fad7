package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/analyze"
	"github.com/relia-dev/relia/internal/config"
)

func init() { register(newAnalyzeCmd) }

func newAnalyzeCmd() *cobra.Command {
	var (
		sf      storeFlags
		rf      rangeFlags
		o       analyze.Options
		step    string
		horizon string
		format  string
		html    string
	)
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Trends, anomalies and a forecast of the gateway's traffic from its call history",
		Long: `analyze reads the call store's rollups over a time range and reports
traffic, error rates and latency percentiles per route, API, tenant and
model; the top consumers; tokens and cost by tenant and model; each
route's last seven days against the seven before; steps far from the
route's seasonal baseline; and a Holt-Winters forecast with daily and
weekly seasons that says when a route is expected to pass --capacity.
Percentiles come from merged latency histograms, never from averages.`,
		Example: `  relia analyze --db calls.db --since 28d --capacity 500 --html analysis.html
  relia analyze --admin http://127.0.0.1:9901 --since 24h -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			var err error
			if o.From, o.To, err = rf.resolve(time.Now()); err != nil {
				return err
			}
			if o.Step, err = config.ParseDuration(step); err != nil || o.Step <= 0 || o.Step%time.Hour != 0 {
				return badInput(fmt.Errorf("--step %q: want whole hours (1h, 24h, 7d)", step))
			}
			if o.Horizon, err = config.ParseDuration(horizon); err != nil || o.Horizon <= 0 {
				return badInput(fmt.Errorf("--horizon %q is not a positive duration", horizon))
			}
			if o.Capacity < 0 {
				return badInput(fmt.Errorf("--capacity %v is negative", o.Capacity))
			}
			querier, closeFn, err := sf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeFn()
			a, err := analyze.Run(cmd.Context(), querier, o)
			if err != nil {
				return queryErr(err)
			}
			if html != "" {
				f, err := os.Create(html)
				if err != nil {
					return runtimeErr(err)
				}
				err = a.Page(o.Capacity).WriteHTML(f)
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return runtimeErr(fmt.Errorf("writing %s: %w", html, err))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "report: %s\n", html)
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(a)
			}
			return a.WriteText(cmd.OutOrStdout(), o.Capacity)
		},
	}
	sf.add(cmd)
	rf.add(cmd, "7d")
	fl := cmd.Flags()
	fl.StringVar(&step, "step", "1h", "the series' step: whole hours (1h, 24h)")
	fl.StringVar(&o.Route, "route", "", "only this route")
	fl.StringVar(&o.API, "api", "", "only this API")
	fl.StringVar(&o.Tenant, "tenant", "", "only this tenant")
	fl.StringVar(&o.Model, "model", "", "only this AI model")
	fl.Float64Var(&o.Capacity, "capacity", 0, "a route's capacity in calls per second; the forecast says when it is expected to pass it")
	fl.StringVar(&horizon, "horizon", "7d", "how far ahead to forecast")
	fl.IntVar(&o.Top, "top", 10, "how many consumers, routes and anomalies to list")
	fl.StringVarP(&format, "output", "o", "table", "stdout format: table or json")
	fl.StringVar(&html, "html", "", "also write a self-contained HTML report to this file")
	return cmd
}
