package main

import (
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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/ai"
	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/internal/config"
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
	var (
		files  []string
		listen string
		admin  string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the AI gateway: an OpenAI-compatible API over the configured model providers",
		Long: `serve runs the AI gateway on its own listener: POST /v1/chat/completions
(streaming and not), /v1/embeddings, GET /v1/models, the Anthropic-compatible
POST /v1/messages and the prompt APIs POST /prompts/{name}, over the providers,
routes, tenants and quotas of the --config files (one kind: AIGateway, any
number of kind: Models and kind: Prompt documents). Each call is logged as one
JSON line on stderr. The admin address serves /metrics (the OpenTelemetry
GenAI metrics), /usage (each tenant's quotas) and POST /reload; SIGHUP
reloads too. SIGINT or SIGTERM drains and exits.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return badInput(errors.New("--config is required"))
			}
			b, err := ai.LoadFiles(files...)
			if err != nil {
				return badInput(err)
			}
			reg := prometheus.NewRegistry()
			svc, err := ai.New(b.Config, b.Catalog, ai.Options{
				Registry: reg,
				Logger:   slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil)),
				Prompts:  b.Prompts,
			})
			if err != nil {
				return badInput(err)
			}
			defer svc.Close()
			reload := func() error {
				b, err := ai.LoadFiles(files...)
				if err != nil {
					return err
				}
				return svc.Reload(b.Config, b.Catalog, b.Prompts)
			}
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
			mux.HandleFunc("GET /usage", func(w http.ResponseWriter, r *http.Request) {
				u, err := svc.Usage(r.Context())
				if err != nil {
					http.Error(w, err.Error(), http.StatusServiceUnavailable)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				json.NewEncoder(w).Encode(map[string]any{"usage": u})
			})
			mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
				if err := reload(); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				io.WriteString(w, "reloaded\n")
			})
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
			servers := []*http.Server{
				{Addr: listen, Handler: svc, ReadHeaderTimeout: 10 * time.Second},
				{Addr: admin, Handler: mux, ReadHeaderTimeout: 10 * time.Second},
			}
			errc := make(chan error, len(servers))
			for _, srv := range servers {
				ln, err := net.Listen("tcp", srv.Addr)
				if err != nil {
					return runtimeErr(fmt.Errorf("listening: %w", err))
				}
				go func() { errc <- srv.Serve(ln) }()
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "relia ai serve: the AI gateway on http://%s, admin on http://%s\n", listen, admin)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			for {
				select {
				case err := <-errc:
					return runtimeErr(err)
				case <-hup:
					if err := reload(); err != nil {
						fmt.Fprintln(cmd.ErrOrStderr(), "relia ai serve: reload refused:", err)
					}
					continue
				case <-ctx.Done():
				}
				break
			}
			shut, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			for _, srv := range servers {
				srv.Shutdown(shut)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&files, "config", "c", nil, "a file of AIGateway, Models and Prompt documents (repeatable)")
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "address of the AI API")
	f.StringVar(&admin, "admin-addr", "127.0.0.1:9902", "address of the admin API (/metrics, /usage, /reload)")
	return cmd
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
