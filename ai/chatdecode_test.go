package ai

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/relia-dev/relia/ai/wire"
)

// chatBodies are requests of every kind decodeChatRequest meets: those it
// scans and those it leaves to json.Unmarshal.
var chatBodies = []string{
	`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}],"max_tokens":64}`,
	`{"model":"m","messages":[],"stream":true,"temperature":0.2,"top_p":1,"n":2,"user":"u","max_completion_tokens":5,"seed":7,"logprobs":false}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}],"name":"ann"},{"role":"tool","content":"42","tool_call_id":"c1"}]}`,
	`{"model":"m","stream":null,"max_tokens":null,"temperature":null,"messages":null,"user":null}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]}`,
	`{"model":"m\u00e9","messages":[{"role":"user","content":"a\nb"}]}`,
	`{"Model":"m","messages":[]}`,
	`{"model":"a","model":"b"}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"messages":[{"content":"y"}]}`,
	`{"model":"m","stream_options":{"include_usage":true},"stream":true,"tools":[],"stop":["x"],"response_format":{"type":"json_object"}}`,
	`{"model":"m","max_tokens":1.5}`,
	`{"model":"m","max_tokens":99999999999999999999}`,
	`{"model":"m","temperature":"hot"}`,
	`{"model":5}`,
	`{"model":"m","messages":[null]}`,
	`{"model":"m","messages":[{"role":"user","ROLE":"x"}]}`,
	`{"model":"m","messages":{}}`,
	`{"model":"m"`,
	`[1,2]`,
	`null`,
	` {"model":"m"}`,
	"{\"model\":\"\xff\"}",
	`{"model":"m","stream":1}`,
}

// TestDecodeChatRequestAsUnmarshal: decodeChatRequest gives what
// json.Unmarshal gives, the request and whether it failed, and scans
// the plain requests itself.
func TestDecodeChatRequestAsUnmarshal(t *testing.T) {
	for _, b := range chatBodies {
		checkDecodeChat(t, []byte(b))
	}
	var req wire.ChatRequest
	if !scanChatRequest([]byte(chatBodies[0]), &req) || !scanChatRequest([]byte(chatBodies[2]), &req) {
		t.Error("a plain request was left to json.Unmarshal")
	}
}

func checkDecodeChat(t *testing.T, body []byte) {
	t.Helper()
	var got, want wire.ChatRequest
	err := decodeChatRequest(body, &got)
	werr := json.Unmarshal(body, &want)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
		t.Fatalf("%q: error %v, json.Unmarshal's %v", body, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", body, got, want)
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	for _, b := range chatBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkDecodeChat(t, body)
	})
}
