package gateway

import (
	"context"
	"net/http"
	"reflect"
	"testing"

	"github.com/relia-dev/relia/internal/h1"
)

// TestAIRequestAsNetHTTP: the request the AI service gets has what
// net/http's reading of the same request would: method, path, query,
// host, target, and every field under its canonical name, repeated
// fields in order, each string its own (not the read buffer's).
func TestAIRequestAsNetHTTP(t *testing.T) {
	buf := []byte("POST/v1/chat/completions?a=1gw/v1/chat/completions?a=1authorizationBearer kX-TagoneX-Tagtwo")
	x := &exchange{req: request{
		method: buf[0:4], query: buf[24:28], host: buf[28:30], target: buf[30:54], minor: 1, length: 7,
		fields: []h1.Header{{Name: buf[54:67], Value: buf[67:75]}, {Name: buf[75:80], Value: buf[80:83]}, {Name: buf[83:88], Value: buf[88:91]}},
	}, path: buf[4:24]}
	req := x.aiRequest(context.Background(), nil)
	want := http.Header{"Authorization": {"Bearer k"}, "X-Tag": {"one", "two"}}
	if req.Method != "POST" || req.URL.Path != "/v1/chat/completions" || req.URL.RawQuery != "a=1" || req.Host != "gw" ||
		req.RequestURI != "/v1/chat/completions?a=1" || req.ContentLength != 7 || req.Body != http.NoBody || !reflect.DeepEqual(req.Header, want) {
		t.Fatalf("request %s %s ? %s host %s uri %s length %d header %v", req.Method, req.URL.Path, req.URL.RawQuery, req.Host, req.RequestURI, req.ContentLength, req.Header)
	}
	for i := range buf {
		buf[i] = '#'
	}
	if req.Header.Get("Authorization") != "Bearer k" || req.Method != "POST" {
		t.Error("the request's strings change with the buffer it was read from")
	}
	req.Header.Add("Authorization", "second")
	if got := req.Header["X-Tag"]; !reflect.DeepEqual(got, []string{"one", "two"}) {
		t.Errorf("adding to one field changed another: %v", got)
	}
}
