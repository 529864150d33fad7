// Package mock is a simulator of model providers for tests and demos: an
// http.Handler that speaks OpenAI's chat completions (streaming and not),
// embeddings and models, Azure OpenAI's deployment paths, Anthropic's
// Messages API, Gemini's generateContent and streamGenerateContent, and
// Bedrock's Converse and ConverseStream, with their stream framings and
// error bodies, at a configured pace and with faults on demand. `relia
// ai mock` serves it.
//
//	sim, err := mock.New(mock.Options{
//		Seed:             1,
//		TimeToFirstToken: 200 * time.Millisecond,
//		TokensPerSecond:  50,
//		Faults: []mock.Fault{
//			{Kind: mock.FaultStatus, Status: 429, RetryAfter: 2 * time.Second, Rate: 0.1},
//			{Kind: mock.FaultStall, AfterTokens: 5, Model: "gpt-4o"},
//		},
//	})
//	...
//	srv := httptest.NewServer(sim) // or http.ListenAndServe(addr, sim)
//
// # What it answers
//
// Any model name is served. An answer has Options.OutputTokens tokens
// (16 by default) or the request's own cap when that is lower (finish
// reason "length", "max_tokens" or MAX_TOKENS then); each token is one
// word with a leading space, chosen by the seed and the prompt, so the
// same request gets the same answer. Usage is reported as the providers
// do: prompt tokens by the simulator's own rule (CountTokens: a quarter
// of the bytes, plus 3 per message), output tokens exactly; an OpenAI
// stream reports usage when stream_options.include_usage asks for it.
//
// Timing runs on Options.Clock: the first token after TimeToFirstToken,
// each next one 1/TokensPerSecond later; a non-streaming answer comes
// when its last token would have.
//
// # Faults
//
// Each Fault hits a share (Rate) of the requests it matches (by model
// and wire format); which ones is decided by the seed and the request's
// number, so the same seed and the same sequence of requests give the
// same faults. FaultStatus answers 429 (with Retry-After), 500, 503, 529
// (Anthropic's overloaded_error) or 400 (context length exceeded) in the
// provider's own error format; FaultStall, FaultTruncate and
// FaultErrorEvent act after AfterTokens tokens of a stream;
// FaultSlowFirstToken delays the first token. SetFaults changes them
// while the simulator runs, and so does PUT /mock/faults with a JSON
// list; GET /mock/requests lists what was received (Requests).
package mock
