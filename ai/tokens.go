package ai

import "github.com/relia-dev/relia/ai/wire"

// EstimateText estimates the tokens of a text before a call, for
// admission by quotas: a quarter of its bytes, rounded up. This is an
// approximation, not a tokenizer: for English text under OpenAI's BPE
// tokenizers it is usually within a few tenths of the true count, less
// close for code and other languages. Quotas are charged with the
// provider's reported usage after the call; the estimate only decides
// whether a call may start.
func EstimateText(s string) int { return (len(s) + 3) / 4 }

// perMessage is the framing a chat adds per message (role and
// separators), as OpenAI's usage counts it.
const perMessage = 3

// estimateChat estimates a chat request's prompt tokens.
func estimateChat(req *wire.ChatRequest) int {
	n := 0
	for i := range req.Messages {
		n += EstimateText(req.Messages[i].Text()) + perMessage
	}
	return n
}

// estimateEmbedding estimates an embedding request's input tokens.
func estimateEmbedding(req *wire.EmbeddingRequest) int {
	n := 0
	for _, in := range req.Inputs() {
		n += EstimateText(in)
	}
	if n == 0 {
		n = len(req.Input) / 4 // token arrays: a token per few bytes of JSON
	}
	return n
}
