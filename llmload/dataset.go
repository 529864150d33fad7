package llmload

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/relia-dev/relia/ai/wire"
)

// Prompt is one request of a dataset: a line of a JSONL file.
//
//	{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 64, "expected_output_tokens": 40}
//	{"prompt": "Summarise this", "model": "gpt-4o", "params": {"temperature": 0}}
type Prompt struct {
	// Messages are the chat messages, OpenAI's shape ({role, content}).
	Messages []Message `json:"messages,omitempty"`
	// Prompt is a single user message, a shorthand for Messages.
	Prompt string `json:"prompt,omitempty"`
	// MaxTokens caps the answer (max_tokens, maxOutputTokens); zero
	// leaves the test's default.
	MaxTokens int `json:"max_tokens,omitempty"`
	// ExpectedOutputTokens is how long the answer is expected to be; it
	// is reported beside what came, not sent.
	ExpectedOutputTokens int `json:"expected_output_tokens,omitempty"`
	// Model overrides the test's model for this request.
	Model string `json:"model,omitempty"`
	// Params are added to the request body's top level (temperature,
	// top_p, ...), over what relia writes.
	Params map[string]json.RawMessage `json:"params,omitempty"`
}

// Message is one chat message.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// MaxDatasetLine bounds one line of a dataset file.
const MaxDatasetLine = 4 << 20

// ReadDataset reads a JSONL dataset: one Prompt per line; blank lines are
// skipped. Errors name the file and the line.
func ReadDataset(path string) ([]Prompt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading dataset: %w", err)
	}
	defer f.Close()
	return ParseDataset(path, f)
}

// ParseDataset reads a JSONL dataset from r; name is used in errors.
func ParseDataset(name string, r io.Reader) ([]Prompt, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxDatasetLine)
	var out []Prompt
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var p Prompt
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if dec.More() {
			return nil, fmt.Errorf("%s:%d: more than one JSON value on the line", name, line)
		}
		switch {
		case len(p.Messages) == 0 && p.Prompt == "":
			return nil, fmt.Errorf("%s:%d: no messages and no prompt", name, line)
		case len(p.Messages) > 0 && p.Prompt != "":
			return nil, fmt.Errorf("%s:%d: messages and prompt: give one", name, line)
		case p.MaxTokens < 0 || p.ExpectedOutputTokens < 0:
			return nil, fmt.Errorf("%s:%d: max_tokens and expected_output_tokens may not be negative", name, line)
		}
		for i, m := range p.Messages {
			if m.Role == "" {
				return nil, fmt.Errorf("%s:%d: messages[%d]: no role", name, line, i)
			}
		}
		for k, v := range p.Params {
			if !json.Valid(v) {
				return nil, fmt.Errorf("%s:%d: params.%s: not JSON", name, line, k)
			}
		}
		out = append(out, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no prompts", name)
	}
	return out, nil
}

// Lengths is a distribution of token counts: normal with Mean and
// StdDev, at least 1 (genai-perf's synthetic input and output lengths).
type Lengths struct {
	Mean, StdDev float64
}

// ParseLengths reads "MEAN" or "MEAN,STDDEV".
func ParseLengths(s string) (Lengths, error) {
	mean, sd, _ := strings.Cut(s, ",")
	var l Lengths
	if _, err := fmt.Sscan(mean, &l.Mean); err != nil || l.Mean < 1 || math.IsInf(l.Mean, 0) {
		return l, fmt.Errorf("%q: want a mean of at least 1 token, then ',stddev' if wanted", s)
	}
	if sd != "" {
		if _, err := fmt.Sscan(sd, &l.StdDev); err != nil || l.StdDev < 0 || math.IsInf(l.StdDev, 0) {
			return l, fmt.Errorf("%q: the standard deviation is not a number of tokens >= 0", s)
		}
	}
	return l, nil
}

// draw picks a length.
func (l Lengths) draw(rng *rand.Rand) int {
	v := l.Mean
	if l.StdDev > 0 {
		v += rng.NormFloat64() * l.StdDev
	}
	return max(1, int(math.Round(v)))
}

// synthWords are the words synthetic prompts are made of: four bytes
// each with their space, a token by the common rule of thumb (and
// exactly by relia ai mock's count).
var synthWords = []string{" the", " sea", " run", " map", " key", " low", " red", " sky", " box", " cup"}

// Synthetic returns n prompts of about input tokens each, asking for
// output tokens each (both drawn from their distributions), made by the
// seed: the same seed gives the same prompts.
func Synthetic(seed uint64, n int, input, output Lengths) []Prompt {
	rng := rand.New(rand.NewPCG(seed, 0x6c6c6d))
	out := make([]Prompt, n)
	for i := range out {
		in := input.draw(rng)
		var b strings.Builder
		b.Grow(in * 4)
		for range in {
			b.WriteString(synthWords[rng.IntN(len(synthWords))])
		}
		o := output.draw(rng)
		out[i] = Prompt{Prompt: strings.TrimPrefix(b.String(), " "), MaxTokens: o, ExpectedOutputTokens: o}
	}
	return out
}

// messages returns the prompt's messages.
func (p *Prompt) messages() []Message {
	if len(p.Messages) > 0 {
		return p.Messages
	}
	return []Message{{Role: "user", Content: p.Prompt}}
}

// body writes the request body of a prompt in a format; stream asks for a
// stream (and, from OpenAI, its usage).
func (p *Prompt) body(api API, model string, maxTokens int) ([]byte, error) {
	if p.Model != "" {
		model = p.Model
	}
	if p.MaxTokens > 0 {
		maxTokens = p.MaxTokens
	}
	var v any
	switch api {
	case APIOpenAI, APISSE, APIWebSocket:
		type req struct {
			Model         string              `json:"model,omitempty"`
			Messages      []Message           `json:"messages"`
			MaxTokens     int                 `json:"max_tokens,omitempty"`
			Stream        bool                `json:"stream"`
			StreamOptions *wire.StreamOptions `json:"stream_options,omitempty"`
		}
		v = req{Model: model, Messages: p.messages(), MaxTokens: maxTokens, Stream: true,
			StreamOptions: &wire.StreamOptions{IncludeUsage: true}}
	case APIAnthropic:
		var system string
		var msgs []Message
		for _, m := range p.messages() {
			if m.Role == "system" {
				system += m.Content
				continue
			}
			msgs = append(msgs, m)
		}
		type req struct {
			Model     string    `json:"model"`
			System    string    `json:"system,omitempty"`
			Messages  []Message `json:"messages"`
			MaxTokens int       `json:"max_tokens"`
			Stream    bool      `json:"stream"`
		}
		v = req{Model: model, System: system, Messages: msgs, MaxTokens: cmp.Or(maxTokens, 1024), Stream: true}
	case APIGemini:
		type part struct {
			Text string `json:"text"`
		}
		type content struct {
			Role  string `json:"role"`
			Parts []part `json:"parts"`
		}
		type config struct {
			MaxOutputTokens int `json:"maxOutputTokens,omitempty"`
		}
		type req struct {
			Contents          []content `json:"contents"`
			SystemInstruction *content  `json:"systemInstruction,omitempty"`
			GenerationConfig  config    `json:"generationConfig"`
		}
		r := req{GenerationConfig: config{MaxOutputTokens: maxTokens}}
		for _, m := range p.messages() {
			switch m.Role {
			case "system":
				r.SystemInstruction = &content{Role: "user", Parts: []part{{Text: m.Content}}}
			case "assistant":
				r.Contents = append(r.Contents, content{Role: "model", Parts: []part{{Text: m.Content}}})
			default:
				r.Contents = append(r.Contents, content{Role: "user", Parts: []part{{Text: m.Content}}})
			}
		}
		v = r
	default:
		return nil, errors.New("unknown api " + string(api))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	for k, raw := range p.Params {
		if b, err = wire.SetMember(b, k, raw); err != nil {
			return nil, err
		}
	}
	return b, nil
}
