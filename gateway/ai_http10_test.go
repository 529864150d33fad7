package gateway

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// TestAIStreamToHTTP10Client: an HTTP/1.0 client, which cannot read
// chunks, gets a stream's events unchunked, to the connection's end.
func TestAIStreamToHTTP10Client(t *testing.T) {
	_, c := aiBenchGatewayAndConn(t, rawProvider(t, streamAnswer(5)), "    - {name: llm, match: {path: {prefix: /v1}}, ai: assist}\n")
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":5}`
	req := strings.Replace(string(chatRequest(body)), "HTTP/1.1", "HTTP/1.0", 1)
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	head, events, _ := strings.Cut(string(answer), "\r\n\r\n")
	if !strings.HasPrefix(head, "HTTP/1.1 200") || strings.Contains(head, "Transfer-Encoding") || !strings.Contains(head, "Connection: close") {
		t.Fatalf("head %q", head)
	}
	for i := range 5 {
		if !strings.Contains(events, fmt.Sprintf(`"content":"tok%d "`, i)) {
			t.Errorf("token %d missing from %q", i, events)
		}
	}
	if !strings.HasSuffix(events, "data: [DONE]\n\n") {
		t.Errorf("events end %q, want [DONE]", events[max(0, len(events)-40):])
	}
}
