package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/load"
	"github.com/spf13/cobra"
)

func init() { register(newFaultCmd) }

// runtimeErr marks err as a failure of the run, not of the user's input.
func runtimeErr(err error) error { return &exitError{code: exitRuntime, err: err} }

func newFaultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Inject faults: a Toxiproxy-compatible fault proxy and its client",
		Long: `relia fault serve runs a fault proxy whose control API is Toxiproxy's, so
toxiproxy-cli and Toxiproxy's client libraries drive it unchanged. The other
subcommands drive a running server: create and delete proxies, list them,
add, renew and remove faults.

A fault that relia fault add starts is a lease: it ends by itself unless
renewed (--ttl, 60s by default), so it never outlives its runner by more.
A toxic created through Toxiproxy's API without a lease stays until
removed, as in Toxiproxy (unless serve --default-ttl sets a lease).
Guide: docs/fault.md.`,
	}
	var server, token string
	cmd.PersistentFlags().StringVar(&server, "server", "http://127.0.0.1:8474", "fault server's control API (client subcommands)")
	cmd.PersistentFlags().StringVar(&token, "token", os.Getenv("RELIA_FAULT_TOKEN"), "bearer token of the control API (default $RELIA_FAULT_TOKEN)")
	client := func() (*fault.Client, error) {
		c, err := fault.NewClient(server, token, nil)
		if err != nil {
			return nil, badInput(err)
		}
		return c, nil
	}
	cmd.AddCommand(newFaultServeCmd(&token), newFaultCreateCmd(client), newFaultDeleteCmd(client), newFaultListCmd(client), newFaultAddCmd(client),
		newFaultRemoveCmd(client), newFaultRenewCmd(client), newFaultResetCmd(client), newFaultProcessCmd(client))
	return cmd
}

// faultServeOptions are relia fault serve's flags.
type faultServeOptions struct {
	listen     string
	config     string
	seed       uint64
	seedSet    bool
	token      string
	defaultTTL time.Duration
	maxProxies int
	allowProc  bool
	launch     []string // NAME=COMMAND
	auditLog   string
}

func newFaultServeCmd(token *string) *cobra.Command {
	var o faultServeOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the fault proxy and its control API",
		Long: `Run the fault proxy. --config takes Toxiproxy's populate format, a JSON
array of {"name", "listen", "upstream", "enabled"}, plus relia's "mode" and
"max_triggered"; relia fault create adds proxies later.

A proxy relays TCP ("mode": "tcp", the default, Toxiproxy's): its toxics
(latency, bandwidth, slicer, timeout, reset_peer, ...) act on the bytes of
each connection. A proxy in HTTP mode ("mode": "http") reads HTTP/1.1 and
passes each request to its upstream; its toxics are of type http and act
per request: match by method, path, headers, a member of the JSON body
(the model) or the request's number, then delay, answer with an error
status (and Retry-After, in relia's shape or a model provider's), truncate
or corrupt the body, set headers, or act on a Server-Sent Events stream
(slow first byte, events a second, stall, truncation or an error event
after N events), on the share of matching requests the toxicity gives. With
"max_triggered": N, a request carrying X-Relia-Fault: <toxic name> gets
that fault whatever the toxicity, N requests at a time at most.

Toxics created through the API without a lease stay until removed, as in
Toxiproxy; --default-ttl gives them a lease instead. At most --max-proxies
proxies exist at once. The seed of every random fault decision is printed
and recorded in the audit log (JSON lines on stderr, or --audit-log); the
same seed and the same traffic give the same decisions. The API listens on
loopback unless told otherwise, and then needs --token. Stopping the server
(SIGINT, SIGTERM) removes every fault, reverts every process fault and
stops the processes --launch started.`,
		Example: `  relia fault serve
  relia fault serve --config proxies.json --seed 42 --audit-log faults.jsonl
  relia fault serve --default-ttl 2m --max-proxies 50
  relia fault serve --allow-process-faults --launch web="python3 -m http.server 9001"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.seedSet = cmd.Flags().Changed("seed")
			o.token = *token
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serveFault(ctx, o, cmd.ErrOrStderr(), nil)
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8474", "address of the control API")
	cmd.Flags().StringVar(&o.config, "config", "", "proxies to create at start (Toxiproxy populate JSON)")
	cmd.Flags().Uint64Var(&o.seed, "seed", 0, "seed of the random fault decisions (default: random, printed)")
	cmd.Flags().DurationVar(&o.defaultTTL, "default-ttl", 0, "lease of a toxic created without lease_ttl (0: none, it stays until removed, as in Toxiproxy)")
	cmd.Flags().IntVar(&o.maxProxies, "max-proxies", fault.DefaultMaxProxies, "most proxies at once; more are refused with 409")
	cmd.Flags().BoolVar(&o.allowProc, "allow-process-faults", false, "let the API kill, pause, burn CPU, hold memory and fill disk on this machine")
	cmd.Flags().StringArrayVar(&o.launch, "launch", nil, "NAME=COMMAND: start COMMAND (split on spaces, no shell) as a process kill, restart and pause faults can name (repeatable; needs --allow-process-faults)")
	cmd.Flags().StringVar(&o.auditLog, "audit-log", "", "append the audit log (JSON lines) to this file instead of stderr")
	return cmd
}

// isLoopback reports whether the listen address's host is loopback only.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serveFault runs the server until ctx ends; ready, if not nil, receives
// the API's address once it listens.
func serveFault(ctx context.Context, o faultServeOptions, stderr io.Writer, ready chan<- string) error {
	if !isLoopback(o.listen) && o.token == "" {
		return badInput(fmt.Errorf("listening on %s, off loopback, needs --token (or $RELIA_FAULT_TOKEN)", o.listen))
	}
	var cfgs []fault.ProxyConfig
	if o.config != "" {
		f, err := os.Open(o.config)
		if err != nil {
			return badInput(fmt.Errorf("reading fault config: %w", err))
		}
		cfgs, err = fault.ReadProxies(f)
		f.Close()
		if err != nil {
			return badInput(fmt.Errorf("reading fault config %s: %w", o.config, err))
		}
	}
	type launch struct {
		name string
		argv []string
	}
	var launches []launch
	for _, l := range o.launch {
		name, command, ok := strings.Cut(l, "=")
		argv := strings.Fields(command)
		if !ok || name == "" || len(argv) == 0 {
			return badInput(fmt.Errorf("--launch %q must be NAME=COMMAND", l))
		}
		launches = append(launches, launch{name, argv})
	}
	if len(launches) > 0 && !o.allowProc {
		return badInput(errors.New("--launch needs --allow-process-faults: launched processes are targets of process faults"))
	}
	// The audit log goes to stderr unless a file is named; the lines for
	// people (the seed, the address) always go to stderr.
	auditOut := stderr
	if o.auditLog != "" {
		f, err := os.OpenFile(o.auditLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return badInput(fmt.Errorf("opening the audit log: %w", err))
		}
		defer f.Close()
		auditOut = f
	}
	if !o.seedSet {
		var b [8]byte
		if _, err := crand.Read(b[:]); err != nil {
			return runtimeErr(fmt.Errorf("picking a seed: %w", err))
		}
		o.seed = binary.LittleEndian.Uint64(b[:])
	}
	audit := slog.New(slog.NewJSONHandler(auditOut, nil))
	srv, err := fault.NewServer(fault.Options{Seed: o.seed, Audit: audit, DefaultTTL: o.defaultTTL, MaxProxies: o.maxProxies, AllowProcessFaults: o.allowProc})
	if err != nil {
		return badInput(err)
	}
	defer srv.Close()
	if _, err := srv.Populate(cfgs); err != nil {
		return badInput(fmt.Errorf("creating proxies from %s: %w", o.config, err))
	}
	for _, l := range launches {
		pid, err := srv.ProcessFaults().Launch(l.name, l.argv...)
		if err != nil {
			return badInput(err)
		}
		fmt.Fprintf(stderr, "relia fault: launched %s as pid %d\n", l.name, pid)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return runtimeErr(fmt.Errorf("listening for the control API: %w", err))
	}
	lease := "none"
	if o.defaultTTL > 0 {
		lease = o.defaultTTL.String()
	}
	fmt.Fprintf(stderr, "relia fault: control API on http://%s, seed %d, default lease %s\n", ln.Addr(), o.seed, lease)
	audit.Info("server started", "listen", ln.Addr().String(), "seed", o.seed, "proxies", len(cfgs))
	hs := &http.Server{Handler: srv.Handler(fault.HandlerOptions{Token: o.token}), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if ready != nil {
		ready <- ln.Addr().String()
	}
	select {
	case err := <-errc:
		return runtimeErr(fmt.Errorf("serving the control API: %w", err))
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(shutCtx)
	// srv.Close (deferred) ends every fault, each recorded as shutdown.
	audit.Info("server stopping", "seed", o.seed)
	return nil
}

// clientErr maps a client error to an exit code: the server refusing the
// request is bad input, not reaching it is a runtime error.
func clientErr(err error) error {
	var ae *fault.APIError
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 {
		return badInput(err)
	}
	return runtimeErr(err)
}

func newFaultCreateCmd(client func() (*fault.Client, error)) *cobra.Command {
	var cfg fault.ProxyConfig
	var disabled bool
	cmd := requestCmd("create NAME", "Create a proxy", 1, client, func(ctx context.Context, c *fault.Client, args []string) (string, error) {
		cfg.Name = args[0]
		if disabled {
			off := false
			cfg.Enabled = &off
		}
		p, err := c.CreateProxy(ctx, cfg)
		if err != nil {
			return "", err
		}
		state := "listening on " + p.Listen
		if !p.Enabled {
			state = "disabled"
		}
		return fmt.Sprintf("created proxy %s (%s mode), %s, upstream %s", p.Name, p.Mode, state, p.Upstream), nil
	})
	cmd.Long = `Create a proxy NAME that listens on --listen and relays to --upstream.
In tcp mode (the default, Toxiproxy's) toxics act on the bytes of each
connection; in http mode the proxy reads HTTP/1.1 and toxics of type http
act per request. --listen with port 0 takes a free port; the address bound
is printed.`
	cmd.Example = `  relia fault create shop --listen 127.0.0.1:26001 --upstream 127.0.0.1:9001
  relia fault create web --listen 127.0.0.1:26002 --upstream 127.0.0.1:9001 --mode http --max-triggered 10`
	cmd.Flags().StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "address the proxy listens on (port 0: any free port)")
	cmd.Flags().StringVar(&cfg.Upstream, "upstream", "", "address the proxy relays to, host:port")
	cmd.Flags().StringVar(&cfg.Mode, "mode", "tcp", "tcp (toxics act on bytes) or http (toxics of type http act per request)")
	cmd.Flags().IntVar(&cfg.MaxTriggered, "max-triggered", 0, "http mode: requests at once that the X-Relia-Fault header may put into a fault (0: the header does nothing)")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "create the proxy without listening yet")
	cmd.MarkFlagRequired("upstream")
	return cmd
}

// requestCmd is a subcommand that makes one request of the server with
// its nargs arguments and prints what do says it did.
func requestCmd(use, short string, nargs int, client func() (*fault.Client, error),
	do func(ctx context.Context, c *fault.Client, args []string) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			done, err := do(cmd.Context(), c, args)
			if err != nil {
				return clientErr(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), done)
			return nil
		},
	}
}

func newFaultDeleteCmd(client func() (*fault.Client, error)) *cobra.Command {
	return requestCmd("delete NAME", "Delete a proxy, ending its faults and connections", 1, client,
		func(ctx context.Context, c *fault.Client, args []string) (string, error) {
			return "deleted proxy " + args[0], c.DeleteProxy(ctx, args[0])
		})
}

// leaseEnd says when a fault's lease ends, or that it has none.
func leaseEnd(l *fault.Lease) string {
	if l == nil {
		return "never (no lease)"
	}
	return l.ExpiresAt.Format(time.RFC3339)
}

func newFaultListCmd(client func() (*fault.Client, error)) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List proxies and their faults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return badInput(fmt.Errorf("-o must be table or json, got %q", output))
			}
			c, err := client()
			if err != nil {
				return err
			}
			ps, err := c.Proxies(cmd.Context())
			if err != nil {
				return clientErr(err)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(ps)
			}
			// The seed decides every random fault; show it beside them.
			if st, err := c.Status(cmd.Context()); err == nil {
				fmt.Fprintf(out, "seed %d, %s\n", st.Seed, st.Version)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROXY\tMODE\tLISTEN\tUPSTREAM\tENABLED\tFAULT\tTYPE\tSTREAM\tTOXICITY\tEXPIRES")
			for _, p := range ps {
				if len(p.Toxics) == 0 {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t-\t\t\t\t\n", p.Name, p.Mode, p.Listen, p.Upstream, p.Enabled)
				}
				for _, t := range p.Toxics {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%s\t%s\t%g\t%s\n", p.Name, p.Mode, p.Listen, p.Upstream, p.Enabled,
						t.Name, t.Type, t.Stream, t.Toxicity, leaseEnd(t.Lease))
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// parseAttrs reads key=value attributes; values are numbers where they
// parse as numbers, strings otherwise.
func parseAttrs(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("attribute %q must be key=value", kv)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		} else if f, err := strconv.ParseFloat(v, 64); err == nil {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("attribute %s: %s is not a finite number", k, v)
			}
			out[k] = f
		} else {
			out[k] = v
		}
	}
	return out, nil
}

func newFaultAddCmd(client func() (*fault.Client, error)) *cobra.Command {
	var r fault.ToxicRequest
	var attrs []string
	var toxicity float64
	var ttl time.Duration
	var hold bool
	var latencyFrom, request string
	var samples int
	cmd := &cobra.Command{
		Use:   "add PROXY",
		Short: "Add a fault (toxic) to a proxy",
		Long: `Add a fault to a proxy. It lasts for its lease (--ttl, 60s by default)
unless renewed; --ttl 0 asks for no lease, and the fault stays until
removed. With --hold the command keeps renewing it until interrupted
(Ctrl-C, SIGTERM) and then removes it, so the fault lasts as long as the
command; if the command is killed outright the lease ends the fault
within its TTL.

Attributes (-a key=value) are the type's, in Toxiproxy's units: latency,
jitter, timeout and delay in milliseconds (slicer's delay in
microseconds), rate in KB/s, bytes and sizes in bytes. -a sets scalar
attributes (numbers where they parse as numbers); lists and objects go
through the API's JSON. relia fault add --help lists the types;
docs/fault.md describes each.

--latency-from replays measured latencies: it reads a results file as
relia load --out writes it and adds a latency toxic whose empirical
distribution draws from its latencies (--request picks one request's);
-a latency=N adds N ms to every draw.`,
		Example: `  relia fault add shop --type latency -a latency=200 -a jitter=50 --ttl 2m
  relia fault add db --type reset_peer --stream upstream --toxicity 0.1
  relia fault add web --type http -a abort_status=503 -a retry_after=5 --toxicity 0.01 --hold
  relia fault add llm --type http -a json_field=model -a json_equals=gpt-4o -a abort_status=429 -a retry_after=2 -a error_format=openai
  relia fault add llm --type http -a stall_after_events=5 --ttl 30s
  relia fault add db --type latency --latency-from results.json --samples 2000`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseAttrs(attrs)
			if err != nil {
				return badInput(err)
			}
			r.Attributes = a
			if latencyFrom != "" {
				if err := replayLatency(&r, latencyFrom, request, samples); err != nil {
					return badInput(err)
				}
			} else if request != "" {
				return badInput(errors.New("--request picks the latencies of --latency-from; give that too"))
			}
			if cmd.Flags().Changed("toxicity") {
				r.Toxicity = &toxicity
			}
			switch {
			case ttl < 0:
				return badInput(fmt.Errorf("--ttl must not be negative, got %v", ttl))
			case ttl == 0 && hold:
				return badInput(errors.New("--hold renews a lease; --ttl 0 asks for none"))
			case ttl == 0:
				r.LeaseTTL = fault.NoLease
			default:
				r.LeaseTTL = ttl.String()
			}
			c, err := client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if hold {
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			return addFault(ctx, c, args[0], r, hold, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&r.Type, "type", "t", "", "fault type: "+strings.Join(fault.ToxicTypes(), ", "))
	cmd.Flags().StringVarP(&r.Name, "name", "n", "", "fault name (default type_stream)")
	cmd.Flags().StringVarP(&r.Stream, "stream", "s", "", "upstream or downstream (default downstream)")
	cmd.Flags().Float64Var(&toxicity, "toxicity", 1, "share of connections (http: of requests) the fault acts on, in [0, 1]")
	cmd.Flags().StringArrayVarP(&attrs, "attribute", "a", nil, "attribute key=value (repeatable)")
	cmd.Flags().DurationVar(&ttl, "ttl", fault.DefaultLeaseTTL, "lease: the fault ends this long after the last renewal (0: no lease, it stays until removed)")
	cmd.Flags().BoolVar(&hold, "hold", false, "renew the lease until interrupted, then remove the fault")
	cmd.Flags().StringVar(&latencyFrom, "latency-from", "", "results file of relia load --out whose latencies a latency toxic replays")
	cmd.Flags().StringVar(&request, "request", "", "with --latency-from: replay this request's latencies (its name in the scenario), not all requests'")
	cmd.Flags().IntVar(&samples, "samples", 1000, "samples of the results' latency distribution to replay (--latency-from)")
	cmd.MarkFlagRequired("type")
	return cmd
}

// replayLatency makes r an empirical latency toxic drawing from the
// latencies in the load results file at path: every request's, or those of
// the request named request.
func replayLatency(r *fault.ToxicRequest, path, request string, samples int) error {
	if r.Type != "latency" {
		return fmt.Errorf("--latency-from needs --type latency, got %q", r.Type)
	}
	for _, k := range []string{"distribution", "samples", "jitter"} {
		if _, ok := r.Attributes[k]; ok {
			return fmt.Errorf("--latency-from sets the distribution; -a %s cannot go with it", k)
		}
	}
	res, err := load.ReadResult(path)
	if err != nil {
		return fmt.Errorf("reading latencies to replay: %w", err)
	}
	rec := res.Requests
	if request != "" {
		if rec = res.ByName[request]; rec == nil {
			return fmt.Errorf("%s has no request %q (it has %s)", path, request, strings.Join(slices.Sorted(maps.Keys(res.ByName)), ", "))
		}
	}
	s, err := fault.LatencySamples(rec, samples)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	r.Attributes["distribution"] = "empirical"
	r.Attributes["samples"] = s
	return nil
}

// addFault adds a toxic; with hold it renews the lease every third of its
// TTL until ctx ends and then removes the toxic.
func addFault(ctx context.Context, c *fault.Client, proxy string, r fault.ToxicRequest, hold bool, out io.Writer) error {
	t, err := c.AddToxic(ctx, proxy, r)
	if err != nil {
		return clientErr(err)
	}
	lease := "no lease, it stays until removed"
	if t.Lease != nil {
		lease = "lease " + t.Lease.TTL + " until " + t.Lease.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(out, "added %s (%s, %s, toxicity %g) to %s, %s\n", t.Name, t.Type, t.Stream, t.Toxicity, proxy, lease)
	if !hold {
		return nil
	}
	if t.Lease == nil {
		return runtimeErr(fmt.Errorf("the server gave %s no lease to hold", t.Name))
	}
	ttl, err := time.ParseDuration(t.Lease.TTL)
	if err != nil || ttl <= 0 {
		return runtimeErr(fmt.Errorf("reading the lease of %s: %q", t.Name, t.Lease.TTL))
	}
	fmt.Fprintf(out, "holding %s, renewing every %v; interrupt to remove it\n", t.Name, ttl/3)
	err = fault.Hold(ctx, nil, ttl/3, func(ctx context.Context) error {
		_, err := c.RenewToxic(ctx, proxy, t.Name, 0)
		return err
	})
	if ctx.Err() == nil {
		// The fault went away under the holder (removed or reset), or
		// the server did.
		return runtimeErr(err)
	}
	rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := c.RemoveToxic(rmCtx, proxy, t.Name); err != nil {
		return clientErr(fmt.Errorf("removing held fault %s: %w", t.Name, err))
	}
	fmt.Fprintf(out, "removed %s from %s\n", t.Name, proxy)
	return nil
}

func newFaultRemoveCmd(client func() (*fault.Client, error)) *cobra.Command {
	return requestCmd("remove PROXY FAULT", "Remove a fault", 2, client,
		func(ctx context.Context, c *fault.Client, args []string) (string, error) {
			return fmt.Sprintf("removed %s from %s", args[1], args[0]), c.RemoveToxic(ctx, args[0], args[1])
		})
}

func newFaultRenewCmd(client func() (*fault.Client, error)) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "renew PROXY FAULT",
		Short: "Renew a fault's lease",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < 0 {
				return badInput(fmt.Errorf("--ttl must not be negative, got %v", ttl))
			}
			c, err := client()
			if err != nil {
				return err
			}
			t, err := c.RenewToxic(cmd.Context(), args[0], args[1], ttl)
			if err != nil {
				return clientErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renewed %s on %s until %s\n", t.Name, args[0], t.Lease.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "new lease (default: the fault's own)")
	return cmd
}

func newFaultResetCmd(client func() (*fault.Client, error)) *cobra.Command {
	return requestCmd("reset", "Remove every fault and re-enable every proxy", 0, client,
		func(ctx context.Context, c *fault.Client, _ []string) (string, error) {
			return "reset: every fault removed", c.Reset(ctx)
		})
}

func newFaultProcessCmd(client func() (*fault.Client, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "process",
		Short: "Process faults on the server's machine (serve --allow-process-faults)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List active process faults",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			fs, err := c.ProcessFaults(cmd.Context())
			if err != nil {
				return clientErr(err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FAULT\tTYPE\tTARGET\tEXPIRES")
			for _, f := range fs {
				target := f.Path
				switch {
				case f.PID > 0:
					target = "pid " + strconv.Itoa(f.PID)
				case f.Launched != "":
					target = f.Launched
				case f.Type == fault.ProcCPU:
					target = fmt.Sprintf("%d cores at %d%%", f.Cores, f.Percent)
				case f.Type == fault.ProcMemory:
					target = fmt.Sprintf("%d bytes", f.Bytes)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.Type, target, f.Lease.ExpiresAt.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	})
	var f fault.ProcessFault
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Start a process fault",
		Example: `  relia fault process add fill --type disk_fill --path /var/tmp/fill --bytes 1073741824 --ttl 2m
  relia fault process add freeze --type pause --pid 4242
  relia fault process add bounce --type restart --launched api`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.TTL < 0 {
				return badInput(fmt.Errorf("--ttl must not be negative, got %v", f.TTL))
			}
			f.Name = args[0]
			c, err := client()
			if err != nil {
				return err
			}
			info, err := c.StartProcessFault(cmd.Context(), f)
			if err != nil {
				return clientErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "started %s (%s), lease %s until %s\n", info.Name, info.Type, info.Lease.TTL, info.Lease.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	add.Flags().StringVarP(&f.Type, "type", "t", "", "kill, restart, pause, cpu, memory or disk_fill")
	add.Flags().IntVar(&f.PID, "pid", 0, "target process (kill, pause)")
	add.Flags().StringVar(&f.Launched, "launched", "", "target process by the name serve --launch gave it (kill, restart, pause)")
	add.Flags().IntVar(&f.Cores, "cores", 0, "cores to burn (cpu)")
	add.Flags().IntVar(&f.Percent, "percent", 0, "share of each core to burn, 1-100 (cpu)")
	add.Flags().Int64Var(&f.Bytes, "bytes", 0, "bytes to hold (memory) or write (disk_fill)")
	add.Flags().StringVar(&f.Path, "path", "", "file to create (disk_fill); must not exist")
	add.Flags().DurationVar(&f.TTL, "ttl", 0, "lease (default: the server's)")
	add.MarkFlagRequired("type")
	var ttl time.Duration
	renew := &cobra.Command{
		Use:   "renew NAME",
		Short: "Renew a process fault's lease",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < 0 {
				return badInput(fmt.Errorf("--ttl must not be negative, got %v", ttl))
			}
			c, err := client()
			if err != nil {
				return err
			}
			info, err := c.RenewProcessFault(cmd.Context(), args[0], ttl)
			if err != nil {
				return clientErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renewed %s until %s\n", info.Name, info.Lease.ExpiresAt.Format(time.RFC3339))
			return nil
		},
	}
	renew.Flags().DurationVar(&ttl, "ttl", 0, "new lease (default: the fault's own)")
	cmd.AddCommand(add, renew, requestCmd("remove NAME", "End a process fault now", 1, client,
		func(ctx context.Context, c *fault.Client, args []string) (string, error) {
			return "removed " + args[0], c.StopProcessFault(ctx, args[0])
		}))
	return cmd
}
