package ai

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// describePiece is what a test compares of a chunk's reading.
func describePiece(data []byte, p piece, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	u := "none"
	if p.usage != nil {
		u = fmt.Sprintf("%+v", *p.usage)
	}
	return fmt.Sprintf("tokens=%v finish=%q usage=%s usageOnly=%v raw=%v", p.tokens, p.finish, u, p.usageOnly, bytes.Equal(p.raw, data))
}

// readChunks reads chunks as a stream does, kept chunk and all, and
// reports each reading and how many were read by comparison.
func readChunks(chunks ...[]byte) (readings []string, compared int) {
	var sh chunkShape
	for _, c := range chunks {
		if p, ok := sh.read(c); ok {
			compared++
			readings = append(readings, describePiece(c, p, nil))
			continue
		}
		p, err := scanChunk(c)
		if err == nil {
			sh.learn(c, p)
		}
		readings = append(readings, describePiece(c, p, err))
	}
	sh.release() // as a stream's end does: the next reading may take its buffer
	return readings, compared
}

// FuzzChunkShape: a chunk read by comparison with the one before it
// reads as scanChunk reads it, whatever the two are.
func FuzzChunkShape(f *testing.F) {
	const typical = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"},"logprobs":null,"finish_reason":null}],"obfuscation":"%s"}`
	for _, pair := range [][2]string{
		{fmt.Sprintf(typical, "Hello", "ab"), fmt.Sprintf(typical, " world", "abcdef")},
		{fmt.Sprintf(typical, "Hello", "ab"), fmt.Sprintf(typical, "", "a")},
		{fmt.Sprintf(typical, "", "ab"), fmt.Sprintf(typical, "x", "ab")},
		{fmt.Sprintf(typical, "a", "ab"), fmt.Sprintf(typical, `\"`, `\u0041`)},
		{fmt.Sprintf(typical, "a", "ab"), fmt.Sprintf(typical, `\q`, "ab")},
		{fmt.Sprintf(typical, "a", "ab"), fmt.Sprintf(typical, "a\x01", "ab")},
		{fmt.Sprintf(typical, "a", "ab"), fmt.Sprintf(typical, "a", "ab") + " "},
		{fmt.Sprintf(typical, "a", "ab"), fmt.Sprintf(typical, "a", "ab")[:60]},
		{`{"choices":[{"delta":{"role":"assistant","content":""}}]}`, `{"choices":[{"delta":{"role":"tool","content":"hi"}}]}`},
		{`{"choices":[{"delta":{"content":"a"}}],"choices":[]}`, `{"choices":[{"delta":{"content":""}}],"choices":[]}`},
		{`{"choices":[{"delta":{"content":"a"}},{"delta":{"content":""}}]}`, `{"choices":[{"delta":{"content":""}},{"delta":{"content":""}}]}`},
		{`{"choices":[{"delta":{"content":"","tool_calls":[{"id":"t"}]}}]}`, `{"choices":[{"delta":{"content":"","tool_calls":[{"id":"u"}]}}]}`},
		{`{"choices":[{"delta":{"content":"a","tool_calls":[]}}]}`, `{"choices":[{"delta":{"content":"","tool_calls":[]}}]}`},
		{`{"choices":[{"delta":{},"finish_reason":"stop"}]}`, `{"choices":[{"delta":{},"finish_reason":"length"}]}`},
		{`{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}`},
		{`{"choices":[],"usage":{"prompt_tokens":3,"x":"a"}}`, `{"choices":[],"usage":{"prompt_tokens":3,"x":"b"}}`},
		{`{"error":null,"choices":[]}`, `{"error":null,"choices":[]}`},
		{`{"ch\u006fices":[{"d\u0065lta":{"cont\u0065nt":"hi"}}]}`, `{"ch\u006fices":[{"d\u0065lta":{"cont\u0065nt":""}}]}`},
		{`{"choices":[{"delta":{"content":"a"},"delta":{"content":"b"}}]}`, `{"choices":[{"delta":{"content":""},"delta":{"content":"b"}}]}`},
		{`{"choices":[{"logprobs":{"content":[{"token":"a"}]},"delta":{"content":"a"}}]}`, `{"choices":[{"logprobs":{"content":[{"token":"bb"}]},"delta":{"content":"bb"}}]}`},
		{`{"choices":[{"delta":{"content":"a"}}],"x":"a"}`, `{"choices":[{"delta":{"content":"a"}}],"x":5}`},
	} {
		f.Add([]byte(pair[0]), []byte(pair[1]))
	}
	f.Fuzz(func(t *testing.T, first, second []byte) {
		var sh chunkShape
		if p, err := scanChunk(first); err == nil {
			sh.learn(first, p)
		}
		p, ok := sh.read(second)
		if !ok {
			return
		}
		got := describePiece(second, p, nil)
		q, err := scanChunk(second)
		if want := describePiece(second, q, err); got != want {
			t.Fatalf("after %q\n%q\nread by comparison %s\nscanned           %s", first, second, got, want)
		}
	})
}

// TestChunkShapeReadsAStream: a provider's stream is read by comparison
// from its second text chunk on, as scanChunk reads it; its first
// chunk, the finish and the usage are scanned in full.
func TestChunkShapeReadsAStream(t *testing.T) {
	t.Parallel()
	chunk := func(delta, finish, tail string) []byte {
		return fmt.Appendf(nil, `{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1796645174,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":%s,"logprobs":null,"finish_reason":%s}]%s}`, delta, finish, tail)
	}
	stream := [][]byte{
		chunk(`{"role":"assistant","content":""}`, "null", `,"obfuscation":"q1"`),
		chunk(`{"content":"The"}`, "null", `,"obfuscation":"Xy0"`),
		chunk(`{"content":" budget"}`, "null", `,"obfuscation":"a"`),
		chunk(`{"content":" \u00e9\"quoted\""}`, "null", `,"obfuscation":"7Kq2"`),
		chunk(`{"content":""}`, "null", `,"obfuscation":"zz"`),
		chunk(`{"content":" holds"}`, "null", `,"obfuscation":"zz"`),
		chunk(`{}`, `"stop"`, `,"obfuscation":"p"`),
		[]byte(`{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1796645174,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`),
	}
	readings, compared := readChunks(stream...)
	for i, c := range stream {
		p, err := scanChunk(c)
		if want := describePiece(c, p, err); readings[i] != want {
			t.Errorf("chunk %d %s: read %s, scanned %s", i, c, readings[i], want)
		}
	}
	// Chunks 2 to 5 differ from chunk 1, the first kept of their
	// shape, only in their content and pad.
	if compared != 4 {
		t.Errorf("%d chunks read by comparison, want 4", compared)
	}
	// A chunk that differs in a number or a read string is scanned:
	// chunk 1's shape with a finish reason, or another created time.
	for _, c := range [][]byte{chunk(`{"content":"x"}`, `"stop"`, `,"obfuscation":"q1"`), bytes.Replace(stream[2], []byte("1796645174"), []byte("1796645175"), 1)} {
		if _, compared := readChunks(stream[1], c); compared != 0 {
			t.Errorf("%s read by comparison with %s", c, stream[1])
		}
	}
	// Invalid strings where the kept chunk had valid ones are scanned,
	// and refused there.
	for _, content := range []string{`\q`, "a\x01", `a\`} {
		c := chunk(`{"content":"`+content+`"}`, "null", `,"obfuscation":"Xy0"`)
		readings, compared := readChunks(stream[1], c)
		if compared != 0 || readings[1][:6] != "error:" {
			t.Errorf("%q: %s (%d compared)", c, readings[1], compared)
		}
	}
}

// TestChunkShapeReleaseLendsItsBuffer: a shape released at its stream's
// end reads nothing by comparison after, and the next stream's shape,
// which may take the buffer it lent, reads its own chunks as scanChunk
// does.
func TestChunkShapeReleaseLendsItsBuffer(t *testing.T) {
	chunk := func(content string) []byte {
		return fmt.Appendf(nil, `{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}`, content)
	}
	var first chunkShape
	p, err := scanChunk(chunk("one"))
	if err != nil {
		t.Fatal(err)
	}
	first.learn(chunk("one"), p)
	if _, ok := first.read(chunk("two")); !ok {
		t.Fatal("a chunk of the kept shape not read by comparison")
	}
	first.release()
	if _, ok := first.read(chunk("two")); ok {
		t.Error("a released shape read a chunk by comparison")
	}
	other := func(content string) []byte {
		return fmt.Appendf(nil, `{"id":"d","object":"chat.completion.chunk","created":2,"model":"n","choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}],"obfuscation":"zz"}`, content)
	}
	readings, compared := readChunks(other("a"), other("bb"), other(""), other("ccc"))
	for i, c := range [][]byte{other("a"), other("bb"), other(""), other("ccc")} {
		p, err := scanChunk(c)
		if want := describePiece(c, p, err); readings[i] != want {
			t.Errorf("chunk %d after a release: read %s, scanned %s", i, readings[i], want)
		}
	}
	if compared != 3 {
		t.Errorf("%d chunks read by comparison after a release, want 3", compared)
	}
}

// TestChunkReadByComparisonRefusesABadString: a provider on loopback
// streams chunks of one shape, the last with an escape JSON has not
// (\q) in its content. The chunks before it reach the client; it does
// not: the stream ends with an error event, and the call is recorded as
// failed mid-stream, as when the chunk is walked in full.
func TestChunkReadByComparisonRefusesABadString(t *testing.T) {
	t.Parallel()
	chunk := func(content string) string {
		return `data: {"id":"chatcmpl-7","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":null}]}` + "\n\n"
	}
	addr, _ := rawProvider(t, func(c net.Conn) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
		for _, ev := range []string{chunk("The"), chunk(" budget"), chunk(" holds"), chunk(`bad\q`), chunk(" latertoken"), "data: [DONE]\n\n"} {
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	var recs records
	svc := streamingServiceWith(t, "http://"+addr, Options{OnRecord: recs.add})
	w := streamOnce(svc)
	body := w.Body.String()
	for _, want := range []string{`"content":"The"`, `"content":" budget"`, `"content":" holds"`, "stream_interrupted"} {
		if !strings.Contains(body, want) {
			t.Errorf("the client's stream lacks %s:\n%s", want, body)
		}
	}
	if strings.Contains(body, `bad\q`) || strings.Contains(body, "latertoken") {
		t.Errorf("the bad chunk or one after it reached the client:\n%s", body)
	}
	waitRecords(t, &recs, 1)
	if r := recs.all()[0]; r.Outcome != OutcomeFailedMidStream {
		t.Errorf("record %+v, want failed mid-stream", r)
	}
}

// BenchmarkStreamChunks is a text chunk read as a stream reads it, by
// comparison with the one before, beside the full scan of it.
func BenchmarkStreamChunks(b *testing.B) {
	kept := []byte(`{"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1796645174,"model":"gpt-4o-mini","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":" under"},"logprobs":null,"finish_reason":null}]}`)
	next := bytes.Replace(kept, []byte(" under"), []byte(" budget"), 1)
	b.Run("compared", func(b *testing.B) {
		var sh chunkShape
		p, _ := scanChunk(kept)
		sh.learn(kept, p)
		b.SetBytes(int64(len(next)))
		b.ReportAllocs()
		for b.Loop() {
			if p, ok := sh.read(next); !ok || !p.tokens {
				b.Fatal(p, ok)
			}
		}
	})
	b.Run("scanned", func(b *testing.B) {
		b.SetBytes(int64(len(next)))
		b.ReportAllocs()
		for b.Loop() {
			if p, err := scanChunk(next); err != nil || !p.tokens {
				b.Fatal(p, err)
			}
		}
	})
}
