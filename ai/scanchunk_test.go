package ai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/relia-dev/relia/ai/wire"
)

// scanChunkByWalks is how scanChunk read a chunk before it walked it
// once: json.Valid's rules first, then a walk for each level read. It is
// kept as the reference FuzzScanChunk holds the one walk to.
func scanChunkByWalks(data []byte) (piece, error) {
	var p piece
	var errv, choices, usage []byte
	bad := func(err error) (piece, error) {
		return piece{}, fmt.Errorf("decoding a stream chunk: %w", err)
	}
	// The chunk is forwarded as the provider wrote it, so it must be
	// JSON by encoding/json's strict rules first: the scan below reads
	// only the members relia needs and is lenient about what it skips.
	if !validJSON(data) {
		return bad(errors.New("not valid JSON"))
	}
	if err := wire.Members(data, func(k, v []byte) bool {
		switch {
		case wire.KeyIs(k, "choices"):
			choices = v
		case wire.KeyIs(k, "usage"):
			usage = v
		case wire.KeyIs(k, "error"):
			errv = v
		}
		return true
	}); err != nil {
		return bad(err)
	}
	if errv != nil && !wire.IsNull(errv) {
		var e wire.ErrorObject
		if err := json.Unmarshal(errv, &e); err != nil {
			return bad(err)
		}
		return piece{}, streamErrorOf(e.Type, e.Message)
	}
	n := 0
	if choices != nil && !wire.IsNull(choices) {
		var serr error
		if err := wire.Elements(choices, func(ch []byte) bool {
			n++
			serr = scanChoiceByWalks(ch, &p)
			return serr == nil
		}); err != nil {
			return bad(err)
		}
		if serr != nil {
			return bad(serr)
		}
	}
	if usage != nil && !wire.IsNull(usage) {
		var w wire.Usage
		if err := json.Unmarshal(usage, &w); err != nil {
			return bad(err)
		}
		u := usageFromOpenAI(&w)
		p.usage = &u
		p.usageOnly = n == 0
	}
	p.raw = data
	return p, nil
}

func scanChoiceByWalks(ch []byte, p *piece) error {
	var delta, finish []byte
	if err := wire.Members(ch, func(k, v []byte) bool {
		switch {
		case wire.KeyIs(k, "delta"):
			delta = v
		case wire.KeyIs(k, "finish_reason"):
			finish = v
		}
		return true
	}); err != nil {
		return err
	}
	if delta != nil && !wire.IsNull(delta) {
		var serr error
		if err := wire.Members(delta, func(k, v []byte) bool {
			switch {
			case wire.KeyIs(k, "content"):
				switch {
				case wire.IsNull(v):
				case v[0] != '"':
					serr = errChunkType
				case len(v) > 2:
					p.tokens = true
				}
			case wire.KeyIs(k, "tool_calls"):
				switch {
				case wire.IsNull(v):
				case v[0] != '[':
					serr = errChunkType
				default:
					wire.Elements(v, func([]byte) bool { p.tokens = true; return false })
				}
			}
			return serr == nil
		}); err != nil {
			return err
		}
		if serr != nil {
			return serr
		}
	}
	if finish != nil && !wire.IsNull(finish) {
		if finish[0] != '"' {
			return errChunkType
		}
		if f := finish[1 : len(finish)-1]; !bytes.ContainsRune(f, '\\') {
			p.finish = string(f)
		} else {
			// Decoded into a string of its own: &p.finish given to
			// json.Unmarshal would put every chunk's piece on the heap.
			var escaped string
			if err := json.Unmarshal(finish, &escaped); err != nil {
				return err
			}
			p.finish = escaped
		}
	}
	return nil
}

// FuzzScanChunk: scanning a chunk in one walk gives what the walk per
// level gave, refusals and their words included.
func FuzzScanChunk(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"content":null,"tool_calls":[{"id":"t"}]}}]}`,
		`{"choices":[{"delta":{},"finish_reason":"st\u006fp"}],"usage":{"prompt_tokens":3}}`,
		`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`,
		`{"error":{"type":"rate_limit_error","message":"slow down"}}`,
		`{"choices":{"delta":{}}}`, `{"choices":[{"delta":{"content":5}}]}`, `{"choices":[1]}`,
		`{"choices":[{"delta":{"content":"a"}},{"delta":[]}]}`, `{"choices":[{"delta":{"content":"a"},"delta":{}}]}`,
		`{"choices":5,"choices":[]}`, `{"choices":[{"finish_reason":1,"finish_reason":null}]}`,
		`{"choices":[],"x":01}`, ` [] `, `null`, `{"a":[[[{}]]]} `, `{"choices":[{"delta":{"tool_calls":[ ]}}]}`,
		// Keys with escapes: read by what they say, not by their bytes.
		`{"ch\u006fices":[{"d\u0065lta":{"cont\u0065nt":"hi"},"finish_re\u0061son":"stop"}],"us\u0061ge":{"prompt_tokens":3}}`,
		`{"choices":[{"delta":{"tool_c\u0061lls":[{"id":"t"}]}}],"\u0065rror":null}`, `{"cho\"ices":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := scanChunk(data)
		q, qerr := scanChunkByWalks(data)
		got, want := describePiece(data, p, err), describePiece(data, q, qerr)
		if got != want {
			t.Fatalf("%q:\none walk     %s\nwalk a level %s", data, got, want)
		}
	})
}

// BenchmarkScanChunk reads a typical stream chunk, as a 100-token stream
// does a hundred times.
func BenchmarkScanChunk(b *testing.B) {
	chunk := []byte(`{"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1796645174,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" under"},"logprobs":null,"finish_reason":null}]}`)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		if p, err := scanChunk(chunk); err != nil || !p.tokens {
			b.Fatal(p, err)
		}
	}
}
