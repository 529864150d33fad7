package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/report"
)

// llmFlags are relia load llm's flags.
type llmFlags struct {
	api, model, method     string
	rate                   float64
	concurrency            int
	duration               time.Duration
	dataset                string
	inputTokens, outTokens string
	prompts                int
	seed                   uint64
	headers                []string
	goodput                string
	thresholds             []string
	idleTimeout            time.Duration
	maxInFlight            int
	segment                string
	lateAfter              time.Duration
	minOnTime              float64
	llmOut                 // --out, --html, -o
}

// llmOut are the output flags of relia load llm and its merge.
type llmOut struct {
	out, html, format string
}

func (o *llmOut) flags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&o.out, "out", "", "write the results (relia/llm/v1 JSON) to this file")
	fl.StringVar(&o.html, "html", "", "write a self-contained HTML report to this file")
	fl.StringVarP(&o.format, "output", "o", "table", "stdout format: table or json")
}

func newLoadLLMCmd() *cobra.Command {
	var f llmFlags
	cmd := &cobra.Command{
		Use:   "llm URL",
		Short: "Streaming load on a model server: time to first token, inter-token latency, tokens/s, goodput",
		Long: `relia load llm sends streaming chat requests to a model server and reads
every stream as it comes: time to first token, inter-token latency, time
per output token, output tokens and tokens per second, and how the stream
ended (done, error event, truncated, stalled past --idle-timeout). The
format follows the URL's path (OpenAI's /v1/chat/completions, Anthropic's
/v1/messages, Gemini's :streamGenerateContent?alt=sse), or --api; --api
sse reads any Server-Sent Events stream, an event a token; a ws:// or
wss:// URL is a WebSocket, the prompt sent as one message and every
message back a token.

  relia load llm http://127.0.0.1:9700/v1/chat/completions --rate 5 --duration 10s \
      --goodput ttft:500ms,tpot:50ms --threshold 'llm_time_to_first_token:p(95)<800'

--rate is the open model (requests on a schedule whatever the server does,
every figure measured from the request's due time); --concurrency the
closed model (each of N users sends its next request when its last one
ended), as genai-perf's --request-rate and --concurrency. Prompts come from
--dataset (JSONL: messages or prompt, max_tokens, expected_output_tokens,
model, params) or are made up from --input-tokens and --output-tokens
(MEAN or MEAN,STDDEV).

Metrics for thresholds: llm_time_to_first_token, llm_inter_token_latency,
llm_time_per_output_token, llm_request_duration (ms),
llm_output_tokens_per_second (tokens/s), llm_output_tokens,
llm_input_tokens, llm_requests, llm_goodput (count or rate),
llm_req_failed (rate), schedule_lag, dropped_iterations. docs/load.md
defines each from its timestamps.

Segments of one test (--segment i/N) merge exactly: relia load llm merge.

Exit codes: 0 every threshold passed, 1 a threshold failed, 2 bad input,
3 interrupted, 4 runtime error, 5 inconclusive (relia could not keep its
own schedule, so the server was not judged).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runLoadLLM(cmd, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.api, "api", "", "stream format: openai, anthropic, gemini, sse or websocket (default: from the URL)")
	fl.StringVarP(&f.method, "method", "X", "", "request method (default POST, GET for --api sse)")
	fl.StringVarP(&f.model, "model", "m", "gpt-4o-mini", "model each request names (a dataset line's model wins)")
	fl.Float64Var(&f.rate, "rate", 0, "requests per second (open model)")
	fl.IntVar(&f.concurrency, "concurrency", 0, "concurrent users (closed model)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to send")
	fl.StringVar(&f.dataset, "dataset", "", "JSONL file of prompts, used in turn")
	fl.StringVar(&f.inputTokens, "input-tokens", fmt.Sprint(llmload.DefaultInputTokens), "length of made-up prompts in tokens: MEAN or MEAN,STDDEV")
	fl.StringVar(&f.outTokens, "output-tokens", fmt.Sprint(llmload.DefaultMaxTokens), "answer length asked for (max tokens): MEAN or MEAN,STDDEV")
	fl.IntVar(&f.prompts, "prompts", 100, "how many prompts to make up")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the made-up prompts")
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "request header 'Name: value' (repeatable), e.g. 'Authorization: Bearer KEY'")
	fl.StringVar(&f.goodput, "goodput", "", "per-request objectives a good request meets, e.g. ttft:500ms,tpot:50ms (ttft, tpot, itl, e2e)")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "threshold 'metric:expression', e.g. 'llm_time_to_first_token:p(95)<500' (repeatable)")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", llmload.DefaultIdleTimeout, "a stream silent this long ends as stalled")
	fl.IntVar(&f.maxInFlight, "max-in-flight", llmload.DefaultMaxInFlight, "cap on streams open at once (open model); arrivals beyond it are dropped and counted")
	fl.StringVar(&f.segment, "segment", "", "run segment i of N of the test (i/N), to merge later")
	fl.DurationVar(&f.lateAfter, "late-after", load.DefaultLateAfter, "how late a request may be sent and still count as on time")
	fl.Float64Var(&f.minOnTime, "min-on-time", load.DefaultMinOnTime, "share of requests that must be sent on time for the run to be judged; 0 turns the check off")
	f.llmOut.flags(cmd)
	cmd.AddCommand(newLoadLLMMergeCmd())
	return cmd
}

// llmOptions turns the flags into a test's options.
func llmOptions(target string, f *llmFlags) (llmload.Options, error) {
	o := llmload.Options{URL: target, Model: f.model, Method: strings.ToUpper(f.method), IdleTimeout: f.idleTimeout, MaxInFlight: f.maxInFlight,
		LateAfter: f.lateAfter, MinOnTime: f.minOnTime, Header: http.Header{}}
	switch {
	case f.format != "table" && f.format != "json":
		return o, fmt.Errorf("-o %q: want table or json", f.format)
	case f.rate > 0 && f.concurrency > 0:
		return o, errors.New("give --rate (open model) or --concurrency (closed model), not both")
	case f.rate < 0 || f.concurrency < 0:
		return o, errors.New("--rate and --concurrency may not be negative")
	case f.rate == 0 && f.concurrency == 0:
		return o, errors.New("give --rate (requests per second) or --concurrency")
	case f.minOnTime < 0 || f.minOnTime > 1:
		return o, fmt.Errorf("--min-on-time %v: want a share from 0 to 1", f.minOnTime)
	case f.idleTimeout <= 0 || f.lateAfter <= 0 || f.maxInFlight < 1 || f.prompts < 1:
		return o, errors.New("--idle-timeout and --late-after want a duration above 0, --max-in-flight and --prompts at least 1")
	}
	if f.minOnTime == 0 {
		o.MinOnTime = -1 // off
	}
	if f.api != "" {
		api, err := llmload.ParseAPI(f.api)
		if err != nil {
			return o, fmt.Errorf("--api: %w", err)
		}
		o.API = api
	}
	if f.rate > 0 {
		sched, err := load.ConstantSchedule(f.rate, f.duration)
		if err != nil {
			return o, fmt.Errorf("--rate %v --duration %s: %w", f.rate, f.duration, err)
		}
		o.Schedule = sched
	} else {
		o.Concurrency, o.Duration = f.concurrency, f.duration
		if f.duration <= 0 {
			return o, fmt.Errorf("--duration %s: want a duration above 0", f.duration)
		}
	}
	if f.segment != "" {
		seg, err := load.ParseSegment(f.segment)
		if err != nil {
			return o, fmt.Errorf("--segment: %w", err)
		}
		o.Segment = seg
	}
	out, err := llmload.ParseLengths(f.outTokens)
	if err != nil {
		return o, fmt.Errorf("--output-tokens %w", err)
	}
	if f.dataset != "" {
		if o.Prompts, err = llmload.ReadDataset(f.dataset); err != nil {
			return o, err
		}
		o.MaxTokens = int(out.Mean)
	} else {
		in, err := llmload.ParseLengths(f.inputTokens)
		if err != nil {
			return o, fmt.Errorf("--input-tokens %w", err)
		}
		o.Prompts = llmload.Synthetic(f.seed, f.prompts, in, out)
	}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return o, fmt.Errorf("-H %q: want 'Name: value'", h)
		}
		o.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if o.Goodput, err = llmload.ParseObjectives(f.goodput); err != nil {
		return o, fmt.Errorf("--goodput: %w", err)
	}
	for _, s := range f.thresholds {
		th, err := load.ParseThresholdFlagIn(llmload.Metrics, s)
		if err != nil {
			return o, fmt.Errorf("--threshold: %w", err)
		}
		if len(th.Tags) > 0 {
			return o, fmt.Errorf("--threshold %q: LLM metrics take no tags", s)
		}
		o.Thresholds = append(o.Thresholds, th)
	}
	return o, nil
}

func runLoadLLM(cmd *cobra.Command, target string, f *llmFlags) error {
	o, err := llmOptions(target, f)
	if err != nil {
		return badInput(err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pp := newProgressPrinter(cmd.ErrOrStderr())
	o.Progress = func(p llmload.Progress) {
		pp.print(p.Elapsed, fmt.Sprintf("relia load llm: %s/%s  %d done, %d streaming, %d output tokens, %d good",
			p.Elapsed.Round(time.Second), p.Duration.Round(time.Second), p.Done, p.InFlight, p.Tokens, p.Good))
	}
	res, err := llmload.Run(ctx, o)
	pp.close()
	if err != nil {
		return badInput(err) // Run fails only on options it refuses
	}
	if err := writeLLMResult(cmd.OutOrStdout(), res, f.llmOut); err != nil {
		return err
	}
	if res.Stopped == "interrupted" {
		return &exitError{code: exitAborted, err: errors.New("interrupted before the end of the schedule")}
	}
	return nil
}

// writeLLMResult writes a result where the flags say and returns the
// exit its judgement asks for.
func writeLLMResult(stdout io.Writer, res *llmload.Result, o llmOut) error {
	data, err := resultJSON(res, o.out)
	if err != nil {
		return err
	}
	j := res.Judge()
	if o.html != "" {
		page := res.Page(j)
		page.Generated = time.Now()
		if err := writeHTMLFile(o.html, page); err != nil {
			return runtimeErr(err)
		}
	}
	if o.format == "json" {
		if _, err := stdout.Write(append(data, '\n')); err != nil {
			return runtimeErr(err)
		}
	} else if err := res.WriteSummary(stdout, j); err != nil {
		return runtimeErr(err)
	}
	return verdictErr(j.Result, j.Reasons)
}

// resultJSON encodes a run's results and writes them to path, unless
// path is empty.
func resultJSON(res any, path string) ([]byte, error) {
	data, err := json.Marshal(res)
	if err != nil {
		return nil, runtimeErr(err)
	}
	if path != "" {
		if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
			return nil, runtimeErr(fmt.Errorf("writing results: %w", err))
		}
	}
	return data, nil
}

// verdictErr is the exit of a judgement (load.Passed, load.Failed or
// load.Inconclusive) with its reasons.
func verdictErr(result string, reasons []string) error {
	switch result {
	case load.Inconclusive:
		return &exitError{code: exitInconclusive, err: errors.New(strings.Join(reasons, "; "))}
	case load.Failed:
		return &exitError{code: exitFailed, err: errors.New(strings.Join(reasons, "; "))}
	}
	return nil
}

// writeHTMLFile writes a report page to path.
func writeHTMLFile(path string, page *report.Page) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	if err := page.WriteHTML(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing the HTML report: %w", err)
	}
	return f.Close()
}

func newLoadLLMMergeCmd() *cobra.Command {
	var o llmOut
	cmd := &cobra.Command{
		Use:   "merge RESULT.json...",
		Short: "Merge the results of segments of one LLM load test (relia/llm/v1) into one, exactly",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.format != "table" && o.format != "json" {
				return badInput(fmt.Errorf("-o %q: want table or json", o.format))
			}
			var files []savedFile
			for _, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return badInput(fmt.Errorf("reading results: %w", err))
				}
				files = append(files, savedFile{path: path, schema: llmload.ResultSchema, data: data})
			}
			res, err := llmResults(files)
			if err != nil {
				return err
			}
			return writeLLMResult(cmd.OutOrStdout(), res, o)
		},
	}
	o.flags(cmd)
	return cmd
}

// llmResults decodes saved relia/llm/v1 results and merges the segments
// of one test exactly.
func llmResults(files []savedFile) (*llmload.Result, error) {
	var rs []*llmload.Result
	for _, f := range files {
		r := &llmload.Result{}
		if err := json.Unmarshal(f.data, r); err != nil {
			return nil, badInput(fmt.Errorf("reading results %s: %w", f.path, err))
		}
		rs = append(rs, r)
	}
	if len(rs) == 1 {
		return rs[0], nil
	}
	res, err := llmload.Merge(rs...)
	if err != nil {
		return nil, badInput(err)
	}
	return res, nil
}

// llmResultsPage is relia report's page of saved LLM load results.
func llmResultsPage(files []savedFile) (*report.Page, error) {
	res, err := llmResults(files)
	if err != nil {
		return nil, err
	}
	return res.Page(res.Judge()), nil
}
