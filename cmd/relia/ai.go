package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/gateway"
	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/fdtable"
	"github.com/relia-dev/relia/internal/gcfloor"
	"github.com/relia-dev/relia/internal/netyield"
)

func init() {
	register(newAICmd)
	for _, kind := range []string{ai.Kind, ai.KindModels, ai.KindPrompt} {
		registerValidator(kind, validateAI)
	}
	schemas[ai.Kind] = ai.JSONSchema
	schemas[ai.KindModels] = ai.ModelsJSONSchema
	schemas[ai.KindPrompt] = ai.PromptJSONSchema
}

// validateAI checks a file's AI documents: a file of Models or Prompt
// documents alone is checked against the shipped catalog; one with an
// AIGateway document as a whole.
func validateAI(name string, data []byte) error {
	docs, err := config.Parse(name, data)
	if err != nil {
		return err
	}
	for _, d := range docs {
		if d.Kind == ai.Kind {
			_, err := ai.ParseBundle(name, data)
			return err
		}
	}
	if _, err := ai.ParseModels(name, data); err != nil {
		return err
	}
	_, err = ai.ParsePrompts(name, data)
	return err
}

func newAICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ai",
		Short: "The AI gateway: serve it, check its config, list its models, simulate providers",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAIMockCmd(), newAIServeCmd(), newAIModelsCmd(), newAIValidateCmd(), newAISchemaCmd())
	return cmd
}

func newAIMockCmd() *cobra.Command {
	var (
		listen   string
		o        mock.Options
		faults   []string
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mock",
		Short: "Simulate model providers (OpenAI, Anthropic, Gemini, Bedrock) with a set pace and faults",
		Long: `mock serves a simulator of model providers on one address:

  POST /v1/chat/completions, /v1/embeddings, GET /v1/models   OpenAI (and OpenAI-compatible)
  POST /openai/deployments/{deployment}/chat/completions       Azure OpenAI
  POST /v1/messages                                           Anthropic Messages
  POST /v1beta/models/{model}:generateContent                 Gemini (and :streamGenerateContent?alt=sse)
  POST /model/{modelId}/converse, /converse-stream             AWS Bedrock Converse

Answers stream at --tps tokens a second after --ttft. Faults (--fault,
repeatable) hit a share of the requests chosen by --seed, so a run repeats:

  429,retry-after=2s,rate=0.5     a rate limit with Retry-After
  529 | 500 | 503 | 400           overloaded, server errors, context length exceeded
  stall,after=5                   a stream stops after 5 tokens
  truncate,after=5                the connection closes mid-stream
  error_event,after=5,status=529  the provider's error event mid-stream
  slow_first_token,delay=2s       the first token comes 2s late

Each may add model=NAME or api=openai|anthropic|gemini|bedrock to match
fewer requests. PUT /mock/faults (a JSON list) changes the faults while it
runs; GET /mock/requests lists what it received.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range faults {
				f, err := mock.ParseFault(s)
				if err != nil {
					return badInput(err)
				}
				o.Faults = append(o.Faults, f)
			}
			sim, err := mock.New(o)
			if err != nil {
				return badInput(err)
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return runtimeErr(fmt.Errorf("listening: %w", err))
			}
			srv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(cmd.ErrOrStderr(), "relia ai mock: serving on http://%s\n", ln.Addr())
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				return runtimeErr(err)
			case <-ctx.Done():
			}
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := srv.Shutdown(shut); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return runtimeErr(err)
			}
			srv.Close() // streams still stalled on purpose
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:9700", "address to serve on")
	f.Int64Var(&o.Seed, "seed", 1, "seed of fault decisions and answer words")
	f.DurationVar(&o.TimeToFirstToken, "ttft", 0, "time to first token")
	f.Float64Var(&o.TokensPerSecond, "tps", 0, "tokens per second after the first (0: all at once)")
	f.IntVar(&o.OutputTokens, "output-tokens", mock.DefaultOutputTokens, "tokens per answer when the request's cap is not lower")
	f.IntVar(&o.ContextWindow, "context-window", 0, "refuse prompts plus output caps above this many tokens (0: no limit)")
	f.StringArrayVar(&o.APIKeys, "api-key", nil, "accept only this API key (repeatable; none: any)")
	f.StringArrayVar(&faults, "fault", nil, "inject a fault (repeatable; see above)")
	f.DurationVar(&duration, "duration", 0, "stop after this long (0: until interrupted)")
	return cmd
}

func newAIServeCmd() *cobra.Command {
	var o aiServeOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the AI gateway: an OpenAI-compatible API over the configured model providers",
		Long: `serve runs the AI gateway on relia gateway's edge, on a listener of its
own: POST /v1/chat/completions (streaming and not), /v1/embeddings,
GET /v1/models, /v1/responses, the Anthropic-compatible POST /v1/messages
and the prompt APIs POST /prompts/{name}, over the providers, routes,
tenants and quotas of the --config files (one kind: AIGateway, any number
of kind: Models and kind: Prompt documents; a kind: Gateway beside them is
not read). Each call is one JSON line of the gateway's access log on
stderr. The admin address serves the gateway's admin API: /metrics (the
gateway's and the OpenTelemetry GenAI metrics), /usage (each tenant's
quotas), POST /reload and /healthz; off loopback it needs
--admin-token-file. SIGHUP reloads too. SIGINT or SIGTERM drains and
exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			defer gcfloor.Keep(gcfloor.Floor)()
			defer netyield.PollDuringSweeps()() // the poller's rounds while the heap is swept, on one processor
			fdtable.Grow(fdtable.Gateway)       // best effort: a table that grows under load stalls an accept
			return serveAI(ctx, o, hup, cmd.ErrOrStderr(), nil)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "config", "c", nil, "a file of AIGateway, Models and Prompt documents (repeatable)")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8090", "address of the AI API")
	f.StringVar(&o.admin, "admin-addr", "127.0.0.1:9902", "address of the admin API (/metrics, /usage, /reload, /healthz)")
	f.StringVar(&o.adminToken, "admin-token-file", "", "a file holding the bearer token the admin API requires (required off loopback)")
	return cmd
}

// aiServeOptions are relia ai serve's flags.
type aiServeOptions struct {
	files                     []string
	listen, admin, adminToken string
}

// aiServeName names the listener and the route of relia ai serve's
// gateway, in its access log and metrics.
const aiServeName = "ai"

// serveAI runs relia ai serve until ctx ends, then drains: a gateway
// whose one listener hands every request to the AI gateway of o's files.
// Each value on hup reloads the files. Once it listens it sends the AI
// API's and the admin API's addresses on ready, when ready is not nil.
func serveAI(ctx context.Context, o aiServeOptions, hup <-chan os.Signal, stderr io.Writer, ready chan<- [2]string) error {
	if len(o.files) == 0 {
		return badInput(errors.New("--config is required"))
	}
	load := func() (*gateway.Config, error) {
		b, err := ai.LoadFiles(o.files...)
		if err != nil {
			return nil, err
		}
		return aiServeConfig(b, o)
	}
	cfg, err := load()
	if err != nil {
		return badInput(err)
	}
	g, err := gateway.New(cfg, gateway.Options{
		Logger:    slog.New(slog.NewJSONHandler(stderr, nil)),
		AccessLog: stderr,
		Load:      load,
	})
	if err != nil {
		return badInput(err)
	}
	// The paths relia ai serve's admin API has always had, beside the
	// gateway's own (/ai/usage is /usage).
	g.HandleAdmin("GET /usage", http.HandlerFunc(g.ServeAIUsage))
	if err := g.Start(); err != nil {
		return runtimeErr(err)
	}
	addrs := [2]string{g.Addr(aiServeName), g.AdminAddr()}
	fmt.Fprintf(stderr, "relia ai serve: the AI gateway on http://%s, admin on http://%s\n", addrs[0], addrs[1])
	if ready != nil {
		ready <- addrs
	}
	for done := false; !done; {
		select {
		case <-hup:
			if err := g.ReloadFile(); err != nil {
				fmt.Fprintln(stderr, "relia ai serve: reload refused:", err)
			}
		case <-ctx.Done():
			done = true
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), drainTimeout(g))
	defer cancel()
	if err := g.Shutdown(sctx); err != nil {
		return runtimeErr(fmt.Errorf("draining: %w", err))
	}
	return nil
}

// aiServeConfig is the gateway relia ai serve runs over the AI gateway
// b: one listener at o.listen whose one route takes every request (the
// AI gateway answers the paths it does not serve), and the admin API at
// o.admin.
func aiServeConfig(b *ai.Bundle, o aiServeOptions) (*gateway.Config, error) {
	cfg := &gateway.Config{
		Metadata: gateway.Metadata{Name: b.Config.Metadata.Name},
		Spec: gateway.Spec{
			Listeners: []gateway.Listener{{Name: aiServeName, Address: o.listen}},
			Admin:     gateway.Admin{Address: o.admin, TokenFile: o.adminToken},
			// The AI gateway's own body limit (4MiB unless its config
			// says) answers first, in its API's format: the route's is
			// above it.
			Routes: []gateway.Route{{Name: aiServeName, AI: b.Config.Metadata.Name,
				MaxBodySize: max(gateway.DefaultMaxBodyBytes, 2*cmp.Or(b.Config.Spec.MaxBodySize, 4<<20))}},
		},
	}
	if err := cfg.SetAI(b); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newAIModelsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "models [FILE...]",
		Short: "List the model catalog: the shipped models and those of the files' kind: Models documents",
		RunE: func(cmd *cobra.Command, files []string) error {
			cat, err := ai.LoadCatalog(files...)
			if err != nil {
				return badInput(err)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				type row struct {
					Name            string   `json:"name"`
					Aliases         []string `json:"aliases,omitempty"`
					Type            string   `json:"type"`
					ContextWindow   int      `json:"context_window"`
					MaxOutputTokens int      `json:"max_output_tokens"`
					Input           float64  `json:"input_usd_per_mtok"`
					Output          float64  `json:"output_usd_per_mtok"`
					CachedInput     float64  `json:"cached_input_usd_per_mtok"`
				}
				var rows []row
				for _, m := range cat.Models() {
					rows = append(rows, row{m.Name, m.Aliases, m.Type, m.ContextWindow, m.MaxOutputTokens, m.Price.Input, m.Price.Output, m.Price.CachedInput})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "MODEL\tTYPE\tCONTEXT\tINPUT $/Mtok\tOUTPUT $/Mtok\tALIASES")
			for _, m := range cat.Models() {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%.3g\t%.3g\t%s\n", m.Name, m.Type, m.ContextWindow, m.Price.Input, m.Price.Output, strings.Join(m.Aliases, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

func newAIValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check AI gateway files (AIGateway, Models, Prompt documents) together, as serve reads them",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			b, err := ai.LoadFiles(files...)
			if err != nil {
				return badInput(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %d providers, %d routes, %d tenants, %d prompts, %d models in the catalog\n",
				len(b.Config.Spec.Providers), len(b.Config.Spec.Routes), len(b.Config.Spec.Tenants), len(b.Prompts), len(b.Catalog.Models()))
			return nil
		},
	}
}

func newAISchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [AIGateway|Models|Prompt]",
		Short: "Print the JSON Schema of the AI gateway's kinds",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kind := ai.Kind
			if len(args) == 1 {
				kind = args[0]
			}
			data, err := schemaOf(kind)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
}
