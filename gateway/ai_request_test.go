package gateway

import (
	"testing"

	"github.com/relia-dev/relia/internal/h1"
)

// TestAIRequestAsNetHTTP: the request the AI service gets has what
// net/http's reading of the same request would: method, path, query
// without its '?', and each field's first value by any case of its name;
// each string its own (not the read buffer's).
func TestAIRequestAsNetHTTP(t *testing.T) {
	buf := []byte("POST/v1/chat/completions?a=1gw/v1/chat/completions?a=1authorizationBearer kX-TagoneX-Tagtwo")
	x := &exchange{req: request{
		method: buf[0:4], query: buf[24:28], host: buf[28:30], target: buf[30:54], minor: 1, length: 7,
		fields: []h1.Header{{Name: buf[54:67], Value: buf[67:75]}, {Name: buf[75:80], Value: buf[80:83]}, {Name: buf[83:88], Value: buf[88:91]}},
	}, path: buf[4:24]}
	req := x.aiRequest(nil)
	if req.Method != "POST" || req.Path != "/v1/chat/completions" || req.Query != "a=1" || req.Body != nil {
		t.Fatalf("request %s %s ? %s body %v", req.Method, req.Path, req.Query, req.Body)
	}
	auth, tag := req.Header.Get("Authorization"), req.Header.Get("x-tag")
	if auth != "Bearer k" || tag != "one" {
		t.Fatalf("fields: Authorization %q, x-tag %q", auth, tag)
	}
	for i := range buf {
		buf[i] = '#'
	}
	if req.Method != "POST" || req.Path != "/v1/chat/completions" || req.Query != "a=1" || auth != "Bearer k" {
		t.Error("the request's strings change with the buffer it was read from")
	}
	x.req.method = []byte("BREW")
	if got := x.aiRequest(nil).Method; got != "BREW" {
		t.Errorf("a method outside the usual ones reaches the service as %q", got)
	}
}
