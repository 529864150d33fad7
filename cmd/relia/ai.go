package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/ai/mock"
)

func init() { register(newAICmd) }

func newAICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ai",
		Short: "The AI gateway's tools: a model provider simulator, the model catalog",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newAIMockCmd())
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
