// Package llmload is load for model serving: streaming requests (OpenAI,
// Anthropic and Gemini chat streams, any Server-Sent Events stream, or
// WebSocket messages) sent on load's arrival schedule (the open model,
// every figure measured from the request's due time, so a slow server
// cannot hide its slowness) or by a number of concurrent users (the closed model), each
// stream measured as it comes: time to first token, inter-token latency,
// time per output token, output tokens and tokens per second, and how it
// ended (done, error event, truncated, stalled past the idle timeout).
// Goodput counts the requests that met every per-request objective.
// `relia load llm` runs it.
//
//	sched, _ := load.ConstantSchedule(5, 10*time.Second)
//	res, err := llmload.Run(ctx, llmload.Options{
//		URL:      "http://127.0.0.1:9700/v1/chat/completions",
//		Model:    "gpt-4o-mini",
//		Prompts:  llmload.Synthetic(1, 100, llmload.Lengths{Mean: 128}, llmload.Lengths{Mean: 64}),
//		Schedule: sched,
//		Goodput:  llmload.Objectives{TTFT: 500 * time.Millisecond, TPOT: 50 * time.Millisecond},
//	})
//	...
//	res.WriteSummary(os.Stdout, res.Judge())
//
// Results are outcome.Recorders (per-second buckets, HDR histograms) and
// merge exactly across segments (Merge); they are written as JSON in the
// relia/llm/v1 schema and as an HTML page (Page). Thresholds name
// Metrics in k6's syntax and are parsed by load.ParseThresholdIn; the
// generator judges itself first by load's rule (load.JudgeHealth).
package llmload
