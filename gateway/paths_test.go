package gateway

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestKeptPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw, want string
		ok        bool
	}{
		{"/projects/group%2Frepo/issues", "/projects/group%2Frepo/issues", true},
		{"/projects/group%2frepo", "/projects/group%2Frepo", true},
		{"/a%5cb", "/a%5Cb", true},
		{`/a\b`, "/a%5Cb", true},
		{`/public/..\admin`, "", false},
		{"/caf%C3%A9/%7Euser", "/café/~user", true},
		{"/a%252Fb", "/a%252Fb", true},     // %25 stays encoded: a literal '%', not a slash
		{"/a%zz/b%", "/a%25zz/b%25", true}, // a '%' that starts no escape is a literal one
		{"//a///b/./c/../d/", "/a/b/d/", true},
		{"/a/b/..", "/a/", true},
		{"/a/%2E%2E/b", "/b", true},
		{"/../a", "/a", true},
		{"", "/", true},
		{"/", "/", true},
		{"/public/..%2Fadmin", "", false},
		{"/public/x%2F..%2F..%2Fadmin", "", false},
		{"/public/%2F..", "", false},
		{"/public/.%5Cadmin", "", false},
		{"/public/%2E%2E%2Fadmin", "", false},
		{"/public/...%2Fadmin", "/public/...%2Fadmin", true},
		{"/public/a..%2Fb", "/public/a..%2Fb", true},
	}
	for _, tc := range tests {
		got, ok := appendKeptPath(nil, []byte(tc.raw))
		if ok != tc.ok || (ok && string(got) != tc.want) {
			t.Errorf("appendKeptPath(%q) = %q, %v; want %q, %v", tc.raw, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHasEscapedSlash(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]bool{
		"/a%2Fb": true, "/a%2fb": true, "/a%5Cb": true, "/a%5cb": true, `/a\b`: true,
		"/a/b": false, "/a%252Fb": false, "/a%2": false, "/a%": false, "/%2": false,
	} {
		if got := hasEscapedSlash([]byte(raw)); got != want {
			t.Errorf("hasEscapedSlash(%q) = %v, want %v", raw, got, want)
		}
	}
}

func TestWirePathEscapesWhatAPathMayNotCarry(t *testing.T) {
	t.Parallel()
	got := string(appendWirePath(nil, []byte("/café/a b?c#d/x%2Fy%25z"), true))
	if want := "/caf%C3%A9/a%20b%3Fc%23d/x%2Fy%25z"; got != want {
		t.Errorf("appendWirePath = %q, want %q", got, want)
	}
}

// FuzzKeptPath checks the kept path against what a target reads from the
// request line: net/url decodes the wire form to the same bytes as the
// kept path fully decoded, the path has no dot or empty segment left, and
// keeping is idempotent. Where the raw path has no escapes at all, it is
// the path decode mode routes on.
func FuzzKeptPath(f *testing.F) {
	for _, s := range []string{"/projects/group%2Frepo", "/a/../b", "//a/./b/", "/public/..%2Fadmin", "/%25%2f%5C", "/a%zz", "/caf%C3%A9", "/a/b/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if strings.ContainsAny(raw, "?#") {
			return // not part of a path
		}
		kept, ok := appendKeptPath(nil, []byte(raw))
		if !ok {
			return
		}
		if kept[0] != '/' || bytes.Contains(kept, []byte("//")) {
			t.Fatalf("%q kept as %q: not a normalized path", raw, kept)
		}
		for _, seg := range bytes.Split(kept[1:], []byte("/")) {
			if string(seg) == "." || string(seg) == ".." {
				t.Fatalf("%q kept as %q: a dot segment is left", raw, kept)
			}
		}
		for i := bytes.IndexByte(kept, '%'); i >= 0; i = nextPercent(kept, i) {
			if i+2 >= len(kept) || !isHex(kept[i+1]) || !isHex(kept[i+2]) {
				t.Fatalf("%q kept as %q: a '%%' at %d starts no escape", raw, kept, i)
			}
			if e := strings.ToUpper(string(kept[i+1 : i+3])); e != "2F" && e != "5C" && e != "25" {
				t.Fatalf("%q kept as %q: %%%s should have been decoded", raw, kept, e)
			}
		}
		wire := appendWirePath(nil, kept, true)
		u, err := url.ParseRequestURI(string(wire))
		if err != nil {
			t.Fatalf("%q: the wire path %q does not parse: %v", raw, wire, err)
		}
		full, err := url.PathUnescape(string(kept))
		if err != nil {
			t.Fatalf("%q kept as %q does not unescape: %v", raw, kept, err)
		}
		if u.Path != full {
			t.Fatalf("%q: the target reads %q from %q, the route matched %q (%q decoded)", raw, u.Path, wire, kept, full)
		}
		again, ok := appendKeptPath(nil, wire)
		if !ok || !bytes.Equal(again, kept) {
			t.Fatalf("%q: keeping the wire path %q gives %q, %v; want %q", raw, wire, again, ok, kept)
		}
		if !strings.ContainsAny(raw, `%\`) {
			if decoded := appendDecodedPath(nil, []byte(raw)); !bytes.Equal(decoded, kept) {
				t.Fatalf("%q: kept %q, decoded %q", raw, kept, decoded)
			}
		}
	})
}

func nextPercent(b []byte, i int) int {
	j := bytes.IndexByte(b[i+1:], '%')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

// TestEscapedSlashes runs a request with encoded slashes through each
// choice and checks what the route matched and what the target received.
func TestEscapedSlashes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode                 string
		sent, gotURI         string
		status               int
		reason, rejectedPath string
	}{
		{mode: "decode", sent: "/projects/group%2Frepo/issues", gotURI: "/projects/group/repo/issues", status: 200},
		{mode: "decode", sent: "/public/..%2Fadmin/x", status: 404, reason: ReasonNoRoute},
		{mode: "keep", sent: "/projects/group%2Frepo/issues", gotURI: "/projects/group%2Frepo/issues", status: 200},
		{mode: "keep", sent: "/projects/a%20b%2fc%3F/../d", gotURI: "/projects/d", status: 200},
		{mode: "keep", sent: "/projects/a%20b%2fc%3F", gotURI: "/projects/a%20b%2Fc%3F", status: 200},
		{mode: "keep", sent: "/public/..%2Fadmin/x", status: 400, reason: ReasonHiddenDotSegment},
		{mode: "reject", sent: "/projects/group%2Frepo/issues", status: 400, reason: ReasonEscapedSlash},
		{mode: "reject", sent: "/projects/group/repo", gotURI: "/projects/group/repo", status: 200},
	} {
		t.Run(tc.mode+tc.sent, func(t *testing.T) {
			t.Parallel()
			b := newBackend(t, "b")
			_, base := startGateway(t, fmt.Sprintf(`
  server: {escapedSlashes: %s}
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes:
    - {name: projects, upstream: b, match: {path: {prefix: /projects/}}}
    - {name: public, upstream: b, match: {path: {prefix: /public/}}}
`, tc.mode, b.addr()), Options{})
			req, err := http.NewRequest("GET", base+tc.sent, nil)
			if err != nil {
				t.Fatal(err)
			}
			if req.URL.EscapedPath() != tc.sent {
				t.Fatalf("the client would send %q, not %q", req.URL.EscapedPath(), tc.sent)
			}
			resp, err := testClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d (%s), want %d", resp.StatusCode, body.String(), tc.status)
			}
			if tc.reason != "" && !strings.Contains(body.String(), `"reason":"`+tc.reason+`"`) {
				t.Errorf("body %s, want reason %s", body.String(), tc.reason)
			}
			if tc.gotURI == "" {
				if b.count() != 0 {
					t.Errorf("the target got %q; the request should not have reached it", b.lastRequest().RequestURI)
				}
				return
			}
			if got := b.lastRequest().RequestURI; got != tc.gotURI {
				t.Errorf("the target got %q, want %q", got, tc.gotURI)
			}
		})
	}
}
