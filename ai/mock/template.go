package mock

import (
	"bytes"
	"encoding/json"
)

// tokenEvents writes a stream's token events from a template: the bytes
// of a token event around its JSON-quoted text, found once a stream by
// writing two probe tokens through the dialect. Marshalling each token's
// event anew took most of the simulator's CPU on a stream answered at
// once (a 100-token stream cost more to send than relia spent relaying
// it), and the simulator shares its core with the load it serves.
//
// The template is used only where it is exact: the dialect's events for
// two probes of different lengths, at two indexes, differ in nothing
// but the quoted probe. A dialect whose frame carries the event's length
// or checksum (Bedrock's event stream) or whose event counts tokens
// (Gemini's) keeps writing each event itself. The last token, which a
// dialect may mark as the last, and an empty one, whose field a dialect
// may leave out, are always written by the dialect.
type tokenEvents struct {
	d              dialect
	a              *answer
	prefix, suffix []byte
}

// Two probes no token would be: different lengths, nothing JSON escapes.
const (
	probeShort = "reliaprobe"
	probeLong  = "reliaprobe-the-longer-one"
)

func newTokenEvents(d dialect, a *answer) *tokenEvents {
	t := &tokenEvents{d: d, a: a}
	if len(a.tokens) < 3 {
		return t
	}
	p0, s0, ok0 := splitAround(d.streamToken(nil, a, 0, probeShort), probeShort)
	p1, s1, ok1 := splitAround(d.streamToken(nil, a, 1, probeLong), probeLong)
	if ok0 && ok1 && bytes.Equal(p0, p1) && bytes.Equal(s0, s1) {
		t.prefix, t.suffix = p0, s0
	}
	return t
}

// splitAround cuts an event at the one place its quoted probe appears.
func splitAround(event []byte, probe string) (prefix, suffix []byte, ok bool) {
	quoted := `"` + probe + `"`
	i := bytes.Index(event, []byte(quoted))
	if i < 0 || bytes.Count(event, []byte(quoted)) != 1 {
		return nil, nil, false
	}
	return event[:i], event[i+len(quoted):], true
}

// size is about how many bytes the stream's token events take, for
// growing the buffer once.
func (t *tokenEvents) size() int {
	n := 0
	for _, tok := range t.a.tokens {
		n += len(t.prefix) + len(tok) + 2 + len(t.suffix)
	}
	return n
}

// append adds token i's event to buf.
func (t *tokenEvents) append(buf []byte, i int, tok string) []byte {
	if t.prefix == nil || tok == "" || i == len(t.a.tokens)-1 {
		return t.d.streamToken(buf, t.a, i, tok)
	}
	buf = append(buf, t.prefix...)
	buf = appendQuoted(buf, tok)
	return append(buf, t.suffix...)
}

// appendQuoted appends s as encoding/json quotes it: as it is when
// nothing in it needs escaping, through encoding/json otherwise, so that
// the template's events are byte for byte the dialect's.
func appendQuoted(buf []byte, s string) []byte {
	for i := range len(s) {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(buf, q...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
