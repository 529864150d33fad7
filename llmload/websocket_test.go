package llmload

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wsServer reads one message, answers with n messages a gap apart after a
// first wait, then ends as the path says: /close (a normal close), /done
// (a "[DONE]" message), /error (a close with status 1011), /cut (the
// connection dropped without a close), /stall (silence).
func wsServer(t *testing.T, n int, first, gap time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), `"messages"`) {
			c.Close(websocket.StatusPolicyViolation, "want a chat request")
			return
		}
		time.Sleep(first)
		for i := range n {
			if i > 0 {
				time.Sleep(gap)
			}
			if c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, "token %d", i)) != nil {
				return
			}
		}
		switch r.URL.Path {
		case "/close":
			c.Close(websocket.StatusNormalClosure, "")
		case "/done":
			c.Write(ctx, websocket.MessageText, []byte("[DONE]"))
			c.Read(ctx) // until the client goes
		case "/error":
			c.Close(websocket.StatusInternalError, "model failed")
		case "/stall":
			<-ctx.Done()
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func TestWebSocketStreams(t *testing.T) {
	t.Parallel()
	const n, first = 4, 20 * time.Millisecond
	base := wsServer(t, n, first, 5*time.Millisecond)
	for path, want := range map[string]Ending{"/close": EndDone, "/done": EndDone, "/error": EndErrorEvent, "/cut": EndTruncated, "/stall": EndStalled} {
		t.Run(path[1:], func(t *testing.T) {
			t.Parallel()
			// The idle timeout ends the stalled streams, so the stall case
			// lasts as long as it; every case needs the server's messages,
			// 5 ms apart, to come within it, and a crowded machine once
			// held one back past 300 ms and cut the stream short.
			res := openRun(t, base+path, 2, Options{IdleTimeout: 2 * time.Second})
			if res.API != APIWebSocket || res.Endings[want] != 2 || len(res.Endings) != 1 {
				t.Fatalf("api %s, endings %v: want 2 %s", res.API, res.Endings, want)
			}
			if got := res.Tokens.Total().BytesIn; got != 2*n {
				t.Errorf("messages counted %d, want %d", got, 2*n)
			}
			if min := res.TTFT.Total().Latency.Min(); min < first {
				t.Errorf("time to first message %s below the server's wait %s", min, first)
			}
			if gaps := res.ITL.Total().Total; gaps != 2*(n-1) {
				t.Errorf("%d gaps between messages, want %d", gaps, 2*(n-1))
			}
		})
	}
	if _, err := Run(context.Background(), Options{URL: base + "/close", API: APIOpenAI, Prompts: Synthetic(1, 1, Lengths{Mean: 1}, Lengths{Mean: 1}),
		Concurrency: 1, Duration: time.Second}); err == nil || !strings.Contains(err.Error(), "ws://") {
		t.Errorf("a ws:// URL read as OpenAI's stream: %v", err)
	}
}
