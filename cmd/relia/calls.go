package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/internal/config"
)

func init() { register(newCallsCmd) }

// storeFlags say where the call history is: a database (--db) or a
// gateway's admin API (--admin).
type storeFlags struct {
	db, admin string
	// flag names db's flag in errors; "--db" when empty.
	flag string
}

func (f *storeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.db, "db", os.Getenv("RELIA_CALLS_DB"), "the call store: a SQLite file or a postgres:// URL (default $RELIA_CALLS_DB)")
	cmd.Flags().StringVar(&f.admin, "admin", "", "a gateway's admin API to ask instead of the database (http://127.0.0.1:9901)")
}

// open returns the Querier the flags name and a function that closes it.
func (f *storeFlags) open(ctx context.Context) (callstore.Querier, func(), error) {
	switch {
	case f.db != "" && f.admin != "":
		return nil, nil, badInput(errors.New("give --db or --admin, not both"))
	case f.admin != "":
		return callstore.NewClient(f.admin, nil), func() {}, nil
	case f.db != "":
		// A reader does not create a SQLite file: a mistyped name is an
		// error, not an empty history.
		if file := strings.TrimPrefix(f.db, "sqlite:"); !strings.Contains(f.db, "://") {
			if _, err := os.Stat(file); err != nil {
				flag := cmp.Or(f.flag, "--db")
				return nil, nil, badInput(fmt.Errorf("%s: no call store: %w", flag, err))
			}
		}
		s, err := callstore.Open(ctx, f.db, callstore.Options{})
		if err != nil {
			return nil, nil, runtimeErr(err)
		}
		return s, func() { s.Close() }, nil
	}
	return nil, nil, badInput(errors.New("no call store: give --db FILE|URL (or set RELIA_CALLS_DB) or --admin URL"))
}

// rangeFlags are a time range: --since, or --from and --to.
type rangeFlags struct {
	since, from, to string
}

func (f *rangeFlags) add(cmd *cobra.Command, since string) {
	cmd.Flags().StringVar(&f.since, "since", since, `how far back from now ("1h", "7d"); ignored with --from`)
	cmd.Flags().StringVar(&f.from, "from", "", "the range's start, RFC 3339 (2027-03-01T00:00:00Z)")
	cmd.Flags().StringVar(&f.to, "to", "", "the range's end, RFC 3339 (default now)")
}

func (f *rangeFlags) resolve(now time.Time) (from, to time.Time, err error) {
	to = now
	if f.to != "" {
		if to, err = time.Parse(time.RFC3339, f.to); err != nil {
			return from, to, badInput(fmt.Errorf("--to %q is not an RFC 3339 time", f.to))
		}
	}
	switch {
	case f.from != "":
		if from, err = time.Parse(time.RFC3339, f.from); err != nil {
			return from, to, badInput(fmt.Errorf("--from %q is not an RFC 3339 time", f.from))
		}
	case f.since != "":
		d, err := config.ParseDuration(f.since)
		if err != nil || d <= 0 {
			return from, to, badInput(fmt.Errorf("--since %q is not a positive duration", f.since))
		}
		from = to.Add(-d)
	}
	if !from.IsZero() && !to.After(from) {
		return from, to, badInput(fmt.Errorf("the range %s to %s is empty", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	return from, to, nil
}

func checkFormat(format string) error {
	if format != "table" && format != "json" {
		return badInput(fmt.Errorf("-o %q: want table or json", format))
	}
	return nil
}

func newCallsCmd() *cobra.Command {
	var (
		sf       storeFlags
		rf       rangeFlags
		q        callstore.Query
		format   string
		follow   bool
		interval time.Duration
		audit    bool
		action   string
	)
	cmd := &cobra.Command{
		Use:   "calls [REQUEST-ID|TRACE-ID]",
		Short: "Query the gateway's call history: filter, follow, or one call's whole story",
		Long: `calls lists the calls the gateway kept (newest first), from its call store
(--db) or through its admin API (--admin). Filters combine; --follow keeps
printing new calls as they are stored. Given a request id or a trace id,
it prints that call's whole story: attempts, fallbacks, rejection reason.
--audit prints the audit log instead: subscription requests, approvals,
revocations and config changes.`,
		Example: `  relia calls --db calls.db --since 1h --route orders --status 5xx
  relia calls --db calls.db --tenant acme --failed -o json
  relia calls --admin http://127.0.0.1:9901 --follow
  relia calls --db calls.db 4bf92f3577b34da6a3ce929d0e0e4736
  relia calls --db calls.db --audit --tenant acme`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			from, to, err := rf.resolve(time.Now())
			if err != nil {
				return err
			}
			if follow || len(args) == 1 {
				from, to = time.Time{}, time.Time{}
				if rf.from != "" {
					from, _, _ = rf.resolve(time.Now())
				}
			}
			querier, closeFn, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer closeFn()
			out := cmd.OutOrStdout()
			switch {
			case audit:
				entries, err := querier.Audit(ctx, callstore.AuditQuery{From: from, To: to, Tenant: q.Tenant, API: q.API, Action: action, Limit: q.Limit})
				if err != nil {
					return queryErr(err)
				}
				return printAudit(out, format, entries)
			case len(args) == 1:
				calls, err := callstore.FindCall(ctx, querier, args[0])
				if err != nil {
					return queryErr(err)
				}
				if len(calls) == 0 {
					return runtimeErr(fmt.Errorf("no call with request id or trace id %q", args[0]))
				}
				if format == "json" {
					return writeCallsJSON(out, calls)
				}
				for i := range calls {
					printStory(out, &calls[i])
				}
				return nil
			}
			q.From, q.To = from, to
			if !follow {
				calls, err := querier.Calls(ctx, q)
				if err != nil {
					return queryErr(err)
				}
				if format == "json" {
					return writeCallsJSON(out, calls)
				}
				return printCalls(out, calls, true)
			}
			return followCalls(ctx, querier, q, format, interval, out)
		},
	}
	sf.add(cmd)
	rf.add(cmd, "1h")
	fl := cmd.Flags()
	fl.StringVar(&q.Route, "route", "", "only this route")
	fl.StringVar(&q.API, "api", "", "only this API")
	fl.StringVar(&q.Tenant, "tenant", "", "only this tenant")
	fl.StringVar(&q.KeyID, "key", "", "only this consumer key id")
	fl.StringVar(&q.Model, "model", "", "only this AI model")
	fl.StringVar(&q.Gateway, "gateway", "", "only calls answered by this gateway")
	fl.StringVar(&q.Status, "status", "", `only this status ("503") or class ("5xx")`)
	fl.StringVar(&q.Outcome, "outcome", "", `only this outcome class ("ok", "status", "timeout", ...)`)
	fl.BoolVar(&q.Failed, "failed", false, "only failed calls")
	fl.StringVarP(&q.Text, "text", "q", "", "only calls whose path, reason, ids, route, tenant, target or model contain this (ASCII case ignored)")
	fl.IntVar(&q.Limit, "limit", 50, "the most calls (or audit entries) to print")
	fl.StringVarP(&format, "output", "o", "table", "stdout format: table or json (with --follow, one JSON call per line)")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing calls as they are stored, until interrupted")
	fl.DurationVar(&interval, "interval", time.Second, "how often --follow asks for new calls")
	fl.BoolVar(&audit, "audit", false, "print the audit log instead of calls")
	fl.StringVar(&action, "action", "", `with --audit: only this action, or a prefix ending in a dot ("subscription.")`)
	return cmd
}

// queryErr sorts a query's failure: a bad query is the user's input.
func queryErr(err error) error {
	if errors.Is(err, callstore.ErrBadQuery) {
		return badInput(err)
	}
	return runtimeErr(err)
}

// followCalls prints the latest calls, then every call stored after
// them, polling until ctx ends.
func followCalls(ctx context.Context, querier callstore.Querier, q callstore.Query, format string, every time.Duration, out io.Writer) error {
	if every <= 0 {
		return badInput(errors.New("--interval must be positive"))
	}
	limit := q.Limit
	q.Limit = min(limit, 20)
	latest, err := querier.Calls(ctx, q)
	if err != nil {
		return queryErr(err)
	}
	var after int64
	for i := len(latest) - 1; i >= 0; i-- {
		after = max(after, latest[i].Seq)
	}
	reverse(latest)
	header := true
	emit := func(calls []callstore.Record) error {
		if format == "json" {
			enc := json.NewEncoder(out)
			for i := range calls {
				if err := enc.Encode(calls[i]); err != nil {
					return err
				}
			}
			return nil
		}
		err := printCalls(out, calls, header)
		header = false
		return err
	}
	if err := emit(latest); err != nil {
		return err
	}
	q.Limit = max(limit, 1000)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(every):
		}
		q.AfterSeq = max(after, 1)
		if after == 0 {
			q.AfterSeq = 0
		}
		calls, err := querier.Calls(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return queryErr(err)
		}
		if after == 0 {
			reverse(calls)
		}
		for _, c := range calls {
			after = max(after, c.Seq)
		}
		if len(calls) > 0 {
			if err := emit(calls); err != nil {
				return err
			}
		}
	}
}

func reverse(calls []callstore.Record) {
	for i, j := 0, len(calls)-1; i < j; i, j = i+1, j-1 {
		calls[i], calls[j] = calls[j], calls[i]
	}
}

func writeCallsJSON(w io.Writer, calls []callstore.Record) error {
	if calls == nil {
		calls = []callstore.Record{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(callstore.CallsResponse{Schema: callstore.CallsSchema, Calls: calls})
}

func printCalls(w io.Writer, calls []callstore.Record, header bool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, "TIME\tSTATUS\tMETHOD\tPATH\tROUTE\tTENANT\tLATENCY\tTRIES\tREASON\tGATEWAY\tREQUEST ID")
	}
	for i := range calls {
		c := &calls[i]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Time.UTC().Format("2006-01-02T15:04:05.000Z"), c.Status, c.Method, c.Path,
			dash(c.Route), dash(c.Tenant), c.Latency.Round(10*time.Microsecond), c.Attempts, dash(c.Reason), dash(c.Gateway), c.RequestID)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printStory writes one call and its steps, field by field.
func printStory(w io.Writer, c *callstore.Record) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	line("request id", c.RequestID)
	line("trace id", c.TraceID)
	line("time", c.Time.UTC().Format(time.RFC3339Nano))
	line("gateway", c.Gateway)
	line("call", fmt.Sprintf("%s %s", c.Method, c.Path))
	line("route", c.Route)
	if c.API != "" {
		line("api", c.API+" "+c.APIVersion)
	}
	line("tenant", c.Tenant)
	line("key id", c.KeyID)
	line("status", fmt.Sprintf("%d (%s)", c.Status, c.Outcome))
	line("reason", c.Reason)
	line("latency", fmt.Sprintf("%s (gateway %s, upstream %s, first byte %s)", c.Latency, c.GatewayLatency(), c.Upstream, c.TTFB))
	line("target", c.Target)
	line("attempts", fmt.Sprint(c.Attempts))
	line("bytes", fmt.Sprintf("%d in, %d out", c.BytesIn, c.BytesOut))
	if c.Model != "" {
		line("model", c.Model+" via "+dash(c.Provider))
		line("tokens", fmt.Sprintf("%d in, %d out, $%.6f", c.InputTokens, c.OutputTokens, c.Cost))
	}
	for i, s := range c.Steps {
		desc := []string{s.Kind}
		if s.Target != "" {
			desc = append(desc, "to "+s.Target)
		}
		if s.Status != 0 {
			desc = append(desc, fmt.Sprint(s.Status))
		}
		if s.Outcome != "" {
			desc = append(desc, s.Outcome)
		}
		if s.Reason != "" {
			desc = append(desc, "("+s.Reason+")")
		}
		desc = append(desc, "in "+s.Latency.String())
		line(fmt.Sprintf("step %d", i+1), strings.Join(desc, " "))
	}
	for _, h := range c.RequestHeaders {
		line("> "+h.Name, h.Value)
	}
	line("> body", c.RequestBody)
	for _, h := range c.ResponseHeaders {
		line("< "+h.Name, h.Value)
	}
	line("< body", c.ResponseBody)
	tw.Flush()
	fmt.Fprintln(w)
}

func printAudit(w io.Writer, format string, entries []callstore.AuditEntry) error {
	if format == "json" {
		if entries == nil {
			entries = []callstore.AuditEntry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(callstore.AuditResponse{Schema: callstore.AuditSchema, Entries: entries})
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tTENANT\tAPI\tDETAIL")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Actor, e.Action, dash(e.Tenant), dash(e.API), e.Detail)
	}
	return tw.Flush()
}
