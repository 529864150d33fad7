package ai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/relia-dev/relia/ai/wire"
)

// decodeChatRequest decodes a client's chat completion request into req,
// as json.Unmarshal does. The common request (model, messages of role
// and text, stream, caps and sampling numbers, members relia does not
// know) is read by scanning it, with no reflection and its message
// contents kept as slices of body; anything less plain (tools, escaped
// strings, a member named in another case, a repeated member) is left to
// json.Unmarshal, so the two agree on every body (FuzzDecodeChatRequest).
func decodeChatRequest(body []byte, req *wire.ChatRequest) error {
	if !validJSON(body) || !scanChatRequest(body, req) {
		*req = wire.ChatRequest{}
		return json.Unmarshal(body, req)
	}
	return nil
}

// Members of a chat request and of its messages that json.Unmarshal
// would fill: a key that matches one of them only without regard to
// case is left to it.
var (
	chatRequestKeys = []string{"model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "stop", "tools", "tool_choice", "response_format", "user"}
	chatMessageKeys = []string{"role", "content", "name", "tool_calls", "tool_call_id"}
)

// scanChatRequest reads a valid JSON body into req; false means the body
// is not of the plain kind it reads, and req is to be decoded by
// json.Unmarshal.
func scanChatRequest(body []byte, req *wire.ChatRequest) bool {
	if len(body) == 0 || body[0] != '{' {
		return false
	}
	ok := true
	seen := 0
	err := wire.Members(body, func(k, v []byte) bool {
		key, plain := plainKey(k)
		if !plain {
			ok = false
			return false
		}
		// A member given twice is json.Unmarshal's to merge.
		if i := keyIndex(key, chatRequestKeys); i >= 0 {
			if seen&(1<<i) != 0 {
				ok = false
				return false
			}
			seen |= 1 << i
		}
		switch string(key) {
		case "model":
			ok = plainString(v, &req.Model)
		case "user":
			ok = plainString(v, &req.User)
		case "stream":
			switch string(v) {
			case "true":
				req.Stream = true
			case "false", "null":
			default:
				ok = false
			}
		case "max_tokens":
			req.MaxTokens, ok = plainInt(v)
		case "max_completion_tokens":
			req.MaxCompletionTokens, ok = plainInt(v)
		case "n":
			req.N, ok = plainInt(v)
		case "temperature":
			req.Temperature, ok = plainFloat(v)
		case "top_p":
			req.TopP, ok = plainFloat(v)
		case "messages":
			ok = scanMessages(v, req)
		default:
			ok = !foldsTo(key, chatRequestKeys)
		}
		return ok
	})
	return err == nil && ok
}

func scanMessages(v []byte, req *wire.ChatRequest) bool {
	if wire.IsNull(v) {
		return true
	}
	if v[0] != '[' {
		return false
	}
	ok := true
	msgs := make([]wire.ChatMessage, 0, 4)
	err := wire.Elements(v, func(e []byte) bool {
		if e[0] != '{' {
			ok = false
			return false
		}
		var m wire.ChatMessage
		seen := 0
		err := wire.Members(e, func(k, v []byte) bool {
			key, plain := plainKey(k)
			if !plain {
				ok = false
				return false
			}
			bit := 0
			switch string(key) {
			case "role":
				bit, ok = 1, plainString(v, &m.Role)
			case "name":
				bit, ok = 2, plainString(v, &m.Name)
			case "tool_call_id":
				bit, ok = 4, plainString(v, &m.ToolCallID)
			case "content":
				bit, ok = 8, !wire.IsNull(v)
				m.Content = v
			default:
				ok = !foldsTo(key, chatMessageKeys)
			}
			if seen&bit != 0 {
				ok = false
			}
			seen |= bit
			return ok
		})
		if err != nil {
			ok = false
		}
		msgs = append(msgs, m)
		return ok
	})
	if err != nil || !ok {
		return false
	}
	req.Messages = msgs
	return true
}

// plainKey returns a member's key without its quotes (a slice of the
// body: no copy a member); false when it has an escape.
func plainKey(k []byte) ([]byte, bool) {
	k = k[1 : len(k)-1]
	if bytes.IndexByte(k, '\\') >= 0 {
		return nil, false
	}
	return k, true
}

// keyIndex is the index of key in names, or -1.
func keyIndex(key []byte, names []string) int {
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	return -1
}

// plainString reads a string without escapes, of valid UTF-8 (which
// json.Unmarshal would not change), or null (which leaves it as it is).
func plainString(v []byte, s *string) bool {
	if wire.IsNull(v) {
		return true
	}
	if v[0] != '"' {
		return false
	}
	in := v[1 : len(v)-1]
	if bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in) {
		return false
	}
	*s = string(in)
	return true
}

// plainInt reads an integer that fits an int, or null.
func plainInt(v []byte) (*int, bool) {
	if wire.IsNull(v) {
		return nil, true
	}
	n, err := strconv.ParseInt(string(v), 10, 0)
	if err != nil {
		return nil, false
	}
	i := int(n)
	return &i, true
}

// plainFloat reads a number that fits a float64, or null.
func plainFloat(v []byte) (*float64, bool) {
	if wire.IsNull(v) {
		return nil, true
	}
	if v[0] != '-' && (v[0] < '0' || v[0] > '9') {
		return nil, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return nil, false
	}
	return &f, true
}

// foldsTo reports whether key names one of names in another case, so
// that json.Unmarshal would fill that member from it.
func foldsTo(key []byte, names []string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}
