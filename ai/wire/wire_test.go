package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSSEReader(t *testing.T) {
	t.Parallel()
	in := ": comment\r\nevent: ping\r\ndata: {}\r\n\r\ndata: a\ndata: b\nid: 7\n\nevent: lonely\n\ndata:x\r\r"
	r := NewSSEReader(strings.NewReader(in), 0)
	want := []SSEEvent{{Name: "ping", Data: []byte("{}")}, {Data: []byte("a\nb")}, {Data: []byte("x")}}
	for i, w := range want {
		ev, err := r.Next()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.Name != w.Name || !bytes.Equal(ev.Data, w.Data) {
			t.Errorf("event %d: %q %q, want %q %q", i, ev.Name, ev.Data, w.Name, w.Data)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("at the end: %v, want EOF", err)
	}
	r = NewSSEReader(strings.NewReader("data: cut"), 0)
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("a truncated event: %v, want unexpected EOF", err)
	}
	r = NewSSEReader(strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	if _, err := r.Next(); !errors.Is(err, ErrEventTooLarge) {
		t.Errorf("an event over the limit: %v", err)
	}
}

// pieceSource lends its bytes as a Pieces source does: n at a time, in a
// buffer it overwrites on each call, so a reader that kept a piece past
// the next call would read the wrong bytes.
type pieceSource struct {
	in  []byte
	n   int
	buf []byte
}

func (p *pieceSource) Read([]byte) (int, error) {
	panic("an SSEReader over a Pieces source reads its pieces, not Read")
}

func (p *pieceSource) Next() ([]byte, error) {
	if len(p.in) == 0 {
		return nil, io.EOF
	}
	k := min(p.n, len(p.in))
	for i := range p.buf {
		p.buf[i] = '#'
	}
	p.buf = append(p.buf[:0], p.in[:k]...)
	p.in = p.in[k:]
	return p.buf, nil
}

// sameEvents reads in through a plain reader and through a Pieces source
// lending n bytes at a time, and fails unless both give the same events
// and the same end.
func sameEvents(t *testing.T, in []byte, n, max int) {
	t.Helper()
	plain := NewSSEReader(bytes.NewReader(in), max)
	lent := NewSSEReader(&pieceSource{in: in, n: n}, max)
	for range 1000 {
		a, errA := plain.Next()
		b, errB := lent.Next()
		if (errA == nil) != (errB == nil) || errA != nil && errA.Error() != errB.Error() {
			t.Fatalf("%q in pieces of %d: errors %v and %v", in, n, errA, errB)
		}
		if errA != nil {
			return
		}
		if a.Name != b.Name || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("%q in pieces of %d: events %q %q and %q %q", in, n, a.Name, a.Data, b.Name, b.Data)
		}
	}
}

func TestSSEReaderPieces(t *testing.T) {
	t.Parallel()
	in := []byte(": comment\r\nevent: ping\r\ndata: {}\r\n\r\ndata: a\ndata: b\nid: 7\n\nevent: lonely\n\ndata:x\r\rdata: cut")
	for _, n := range []int{1, 2, 3, 7, len(in)} {
		sameEvents(t, in, n, 0)
	}
	r := NewSSEReader(&pieceSource{in: []byte("data: one\n\ndata: two\n\n"), n: 100}, 0)
	if ev, err := r.Next(); err != nil || string(ev.Data) != "one" || r.Buffered() != len("data: two\n\n") {
		t.Errorf("first event %q %v, %d bytes buffered after it", ev.Data, err, r.Buffered())
	}
}

func TestAppendSSERoundTrip(t *testing.T) {
	t.Parallel()
	b := AppendSSE(nil, "message_start", []byte("line1\nline2"))
	if string(b) != "event: message_start\ndata: line1\ndata: line2\n\n" {
		t.Fatalf("%q", b)
	}
	ev, err := NewSSEReader(bytes.NewReader(b), 0).Next()
	if err != nil || ev.Name != "message_start" || string(ev.Data) != "line1\nline2" {
		t.Errorf("%q %q %v", ev.Name, ev.Data, err)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("event: a\ndata: b\n\n"), 16)
	f.Add([]byte("data:\r\n\r\n:x\rdata: y\r\r"), 4)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		max = (max%1000+1000)%1000 + 1 // a negative one too
		sameEvents(t, in, 1+len(in)%5, max)
		r := NewSSEReader(bytes.NewReader(in), max)
		for range 1000 {
			ev, err := r.Next()
			if err != nil {
				return
			}
			if len(ev.Data) > max {
				t.Fatalf("event of %d bytes past a limit of %d", len(ev.Data), max)
			}
			// What was read writes back to the same event.
			back, err := NewSSEReader(bytes.NewReader(AppendSSE(nil, ev.Name, ev.Data)), max+16).Next()
			if err != nil || back.Name != ev.Name || !bytes.Equal(back.Data, ev.Data) {
				if !strings.ContainsAny(ev.Name, "\r\n") {
					t.Fatalf("round trip of %q %q: %q %q %v", ev.Name, ev.Data, back.Name, back.Data, err)
				}
			}
		}
	})
}

func TestExtraKept(t *testing.T) {
	t.Parallel()
	in := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"metadata":{"user_id":"u"},"thinking":{"type":"enabled"}}`
	var r MessagesRequest
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if r.Extra["metadata"] == nil || r.MaxTokens != 5 {
		t.Fatalf("decoded %+v", r)
	}
	r.Model = "other"
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	json.Unmarshal([]byte(strings.Replace(in, `"m"`, `"other"`, 1)), &a)
	json.Unmarshal(out, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Errorf("round trip lost or changed members:\n%s\n%s", ja, jb)
	}
}

func TestContentText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`"plain"`: "plain",
		`[{"type":"text","text":"a"},{"type":"image_url","image_url":{}},{"type":"text","text":"b"}]`: "ab",
		`null`: "",
		``:     "",
	} {
		if got := ContentText(json.RawMessage(in)); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestEventStreamRoundTrip(t *testing.T) {
	t.Parallel()
	var b []byte
	b = AppendEventStream(b, []byte(`{"a":1}`), ":event-type", "messageStart", ":message-type", "event")
	b = AppendEventStream(b, nil, ":exception-type", "throttlingException")
	r := NewEventStreamReader(bytes.NewReader(b))
	m, err := r.Next()
	if err != nil || m.Headers[":event-type"] != "messageStart" || string(m.Payload) != `{"a":1}` {
		t.Fatalf("%+v %v", m, err)
	}
	m, err = r.Next()
	if err != nil || m.Headers[":exception-type"] != "throttlingException" || len(m.Payload) != 0 {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("end: %v", err)
	}
	bad := bytes.Clone(b)
	bad[20] ^= 1
	if _, err := NewEventStreamReader(bytes.NewReader(bad)).Next(); !errors.Is(err, ErrEventStreamCRC) {
		t.Errorf("a flipped bit: %v", err)
	}
}

func FuzzEventStream(f *testing.F) {
	f.Add(AppendEventStream(nil, []byte("{}"), ":event-type", "x"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewEventStreamReader(bytes.NewReader(in))
		for range 100 {
			if _, err := r.Next(); err != nil {
				return
			}
		}
	})
}

func TestSetMember(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, key, val, want string }{
		{`{"model":"a","x":[1,{"model":"no"}]}`, "model", `"b"`, `{"model":"b","x":[1,{"model":"no"}]}`},
		{` { "x" : "}\"" } `, "model", `"b"`, ` { "x" : "}\"" ,"model":"b"} `},
		{`{}`, "k", `true`, `{"k":true}`},
		{`{"mod\u0065l":1}`, "model", `2`, `{"mod\u0065l":2}`},
	} {
		got, err := SetMember([]byte(tc.in), tc.key, []byte(tc.val))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{`[]`, `{"a":}`, `{"a":1,}`, `{"a":1} x`, `{"a":tru}`, `{"a" 1}`} {
		if _, err := SetMember([]byte(bad), "k", []byte("1")); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func FuzzSetMember(f *testing.F) {
	f.Add([]byte(`{"model":"a","stream":true,"messages":[{"role":"user","content":"hi \"x\""}]}`), "model")
	f.Add([]byte(`{"a":{"b":[1,2,{"c":null}]},"d":-1.5e3}`), "d")
	f.Fuzz(func(t *testing.T, in []byte, key string) {
		if !utf8.ValidString(key) {
			return // relia's keys are its own constants
		}
		out, err := SetMember(in, key, []byte(`"relia"`))
		var before map[string]any
		validBefore := json.Unmarshal(in, &before) == nil
		if err != nil {
			if validBefore {
				t.Fatalf("%q: valid JSON object refused: %v", in, err)
			}
			return
		}
		var after map[string]any
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("%q -> %q: not JSON: %v", in, out, err)
		}
		if !validBefore {
			return // the scanner is laxer than encoding/json about what it skips
		}
		if after[key] != "relia" {
			t.Fatalf("%q -> %q: %q is %v", in, out, key, after[key])
		}
		delete(before, key)
		delete(after, key)
		a, _ := json.Marshal(before)
		b, _ := json.Marshal(after)
		if !bytes.Equal(a, b) {
			t.Fatalf("%q -> %q: other members changed", in, out)
		}
	})
}

// TestErrorTypes: the error type each provider's SDK expects with a
// status, as relia ai mock and the fault proxy both answer.
func TestErrorTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status            int
		openai, anthropic string
	}{
		{400, ErrTypeInvalidRequest, AnthropicInvalidRequest},
		{401, ErrTypeAuthentication, AnthropicAuthentication},
		{429, ErrTypeRateLimit, AnthropicRateLimit},
		{StatusOverloaded, ErrTypeOverloaded, AnthropicOverloaded},
		{500, ErrTypeServer, AnthropicAPIError},
		{502, ErrTypeServer, AnthropicAPIError},
	} {
		if got := OpenAIErrorType(tc.status); got != tc.openai {
			t.Errorf("OpenAIErrorType(%d) = %s, want %s", tc.status, got, tc.openai)
		}
		if got := AnthropicErrorType(tc.status); got != tc.anthropic {
			t.Errorf("AnthropicErrorType(%d) = %s, want %s", tc.status, got, tc.anthropic)
		}
	}
}
