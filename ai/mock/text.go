package mock

import (
	"hash/fnv"
	"strings"
)

// words is the simulator's vocabulary: each output token is one of them
// with a leading space, so a client that counts words counts tokens.
var words = [...]string{
	"the", "system", "stays", "within", "its", "error", "budget", "while",
	"traffic", "grows", "and", "every", "request", "is", "measured", "under",
	"load", "with", "faults", "injected", "on", "purpose", "so", "that",
	"reliability", "is", "proved", "rather", "than", "hoped", "for", "today",
}

// tokens are the words as output tokens, each with its leading space,
// made once so that an answer's tokens cost no allocation each.
var tokens = func() (t [len(words)]string) {
	for i, w := range words {
		t[i] = " " + w
	}
	return t
}()

// outputWords returns the n tokens of an answer, chosen by the seed and
// the prompt, so that one request always gets the same answer.
func outputWords(seed int64, prompt string, n int) []string {
	h := fnv.New64a()
	h.Write([]byte(prompt))
	base := h.Sum64()
	out := make([]string, n)
	for i := range out {
		out[i] = tokens[splitmix64(uint64(seed)^base^uint64(i)*0x9e3779b97f4a7c15)%uint64(len(tokens))]
	}
	return out
}

// CountTokens is the simulator's token count of a text: a quarter of its
// bytes, rounded up, the usual rule of thumb for English under OpenAI's
// tokenizers. The simulator reports it as the prompt's usage; it is its
// own rule, not a tokenizer's.
func CountTokens(text string) int {
	return (len(text) + 3) / 4
}

// messageOverhead is the tokens the simulator adds per message for the
// chat framing (role and separators), as OpenAI's own usage does.
const messageOverhead = 3

// promptTokens counts a prompt of several messages.
func promptTokens(texts []string) int {
	n := 0
	for _, t := range texts {
		n += CountTokens(t) + messageOverhead
	}
	return n
}

// joinText joins a prompt's texts for hashing.
func joinText(texts []string) string { return strings.Join(texts, "\n") }
