package mock

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// TestTokenEventsAreTheDialects: a stream written from the template is
// byte for byte the stream each dialect writes event by event, tokens
// that JSON escapes included; the dialects whose events cannot be
// templated (Bedrock's framed events, Gemini's counted ones) write their
// own.
func TestTokenEventsAreTheDialects(t *testing.T) {
	t.Parallel()
	tokens := []string{"Hello", ",", " world", ` "quoted"`, " <b>&</b>", " tab\there", " é", "\u2028", "", " end"}
	a := &answer{job: &job{model: "gpt-mock", n: 7, start: time.Unix(1700000000, 0), includeUsage: true}, prompt: 3, tokens: tokens, finish: "stop"}
	for _, c := range []struct {
		name      string
		d         dialect
		templated bool
	}{
		{"openai", openAI{}, true},
		{"anthropic", anthropic{}, true},
		{"gemini", gemini{}, false},
		{"bedrock", bedrock{}, false},
	} {
		events := newTokenEvents(c.d, a)
		if got := events.prefix != nil; got != c.templated {
			t.Errorf("%s: templated %v, want %v", c.name, got, c.templated)
		}
		var want, got []byte
		for i, tok := range tokens {
			want = c.d.streamToken(want, a, i, tok)
			got = events.append(got, i, tok)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: the template wrote\n%s\nthe dialect\n%s", c.name, got, want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	for _, s := range []string{"plain", `"`, "<>&", "\x00\x1f\x7f", "é\u2028\u2029", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendQuoted([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
			t.Fatalf("%q: %s, encoding/json %s", s, got, want)
		}
	})
}
