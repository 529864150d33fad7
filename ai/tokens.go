package ai

import (
	"sync"
	"sync/atomic"

	"github.com/tiktoken-go/tokenizer/codec"

	"github.com/relia-dev/relia/ai/wire"
)

// Encodings a catalog model may name (Model.Encoding): OpenAI's BPE
// tokenizers, whose vocabularies the tokenizer library embeds, so that
// counting needs no download.
const (
	EncodingO200k  = "o200k_base"  // gpt-4o, gpt-4.1, the o-series, gpt-5
	EncodingCl100k = "cl100k_base" // gpt-4, gpt-3.5, text-embedding-3
)

// codecs load each encoding once, on its first use: building a
// vocabulary takes tens of milliseconds and megabytes of heap that a
// gateway without token quotas never needs. Only these two encodings are
// linked in: the library's older ones would add their vocabularies to
// the binary.
var codecs = map[string]func() *codec.Codec{
	EncodingO200k:  sync.OnceValue(codec.NewO200kBase),
	EncodingCl100k: sync.OnceValue(codec.NewCl100kBase),
}

// tokenized counts the texts counted by a BPE tokenizer, for the tests
// that check a call which needs no estimate does not pay for one.
var tokenized atomic.Int64

// EstimateText estimates the tokens of a text before a call, for
// admission by quotas, when the model has no tokenizer relia knows (any
// model of Anthropic, Google, Mistral, ...): a quarter of its bytes,
// rounded up. This is an approximation, not a tokenizer: for English
// text under OpenAI's BPE tokenizers it is usually within a few tenths
// of the true count, less close for code and other languages. Quotas are
// charged with the provider's reported usage after the call; the
// estimate only decides whether a call may start.
func EstimateText(s string) int { return (len(s) + 3) / 4 }

// CountText returns the tokens of s under the model's encoding, counted
// by OpenAI's BPE tokenizer (o200k_base or cl100k_base, as the catalog
// says), or EstimateText's approximation for a model without one.
func (m *Model) CountText(s string) int {
	if get := codecs[m.Encoding]; get != nil {
		tokenized.Add(1)
		if n, err := get().Count(s); err == nil {
			return n
		}
	}
	return EstimateText(s)
}

// perMessage is the framing a chat adds per message (role and
// separators), as OpenAI's usage counts it.
const perMessage = 3

// estimateChat estimates a chat request's prompt tokens under model m.
func estimateChat(req *wire.ChatRequest, m *Model) int {
	n := 0
	for i := range req.Messages {
		n += m.CountText(req.Messages[i].Text()) + perMessage
	}
	return n
}

// chatBound is an upper bound of estimateChat's count, read without
// decoding a message or tokenizing: a message's text is at most the
// bytes of its JSON content, and each token of a byte-level BPE (or of
// the approximation) stands for at least one byte. A call whose bound
// fits the context window needs no estimate for the check.
func chatBound(req *wire.ChatRequest) int {
	n := 0
	for i := range req.Messages {
		n += len(req.Messages[i].Content) + perMessage
	}
	return n
}

// estimateEmbedding estimates an embedding request's input tokens under
// model m.
func estimateEmbedding(req *wire.EmbeddingRequest, m *Model) int {
	n := 0
	for _, in := range req.Inputs() {
		n += m.CountText(in)
	}
	if n == 0 {
		n = len(req.Input) / 4 // token arrays: a token per few bytes of JSON
	}
	return n
}
