package callstore

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRedactorHeaders(t *testing.T) {
	t.Parallel()
	r, err := NewRedactor(Capture{Headers: true, RedactHeaders: []string{"X-Shop-Key"}})
	if err != nil {
		t.Fatal(err)
	}
	got := r.Headers([]Header{
		{"Authorization", "Bearer s3cret"}, {"cookie", "session=s3cret"}, {"X-API-Key", "s3cret"},
		{"x-shop-key", "s3cret"}, {"Content-Type", "application/json"},
	})
	for _, h := range got {
		if strings.Contains(h.Value, "s3cret") {
			t.Errorf("%s kept its secret: %q", h.Name, h.Value)
		}
	}
	if got[4].Value != "application/json" {
		t.Errorf("Content-Type redacted: %q", got[4].Value)
	}
	if off, _ := NewRedactor(Capture{}); off.Headers([]Header{{"A", "b"}}) != nil {
		t.Error("headers kept by a route that does not capture them")
	}
}

func TestRedactorBodies(t *testing.T) {
	t.Parallel()
	r, err := NewRedactor(Capture{Bodies: true, MaxBodyBytes: 250, RedactJSONPaths: []string{"password", "card.number", "items[*].token", "..secret", "$.meta.*.pin"}})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"user":"ann","password":"p1","card":{"number":"4111","exp":"12/30"},"items":[{"token":"t1","n":1},{"token":"t2"}],` +
		`"deep":{"x":[{"secret":"s1"}]},"secret":"s0","meta":{"a":{"pin":"1"},"b":{"pin":"2"}}}`
	got := r.Body([]byte(body), int64(len(body)))
	for _, leak := range []string{"p1", "4111", "t1", "t2", "s0", "s1", `"1"`, `"2"`} {
		if strings.Contains(got, leak) {
			t.Errorf("redacted body still holds %s: %s", leak, got)
		}
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(got), &v); err != nil {
		t.Fatalf("redacted body is not JSON: %v: %s", err, got)
	}
	if v["user"] != "ann" || v["card"].(map[string]any)["exp"] != "12/30" {
		t.Errorf("fields not named were changed: %s", got)
	}

	// A JSON body past the cap cannot be parsed, so it is not kept.
	big := `{"password":"p1","pad":"` + strings.Repeat("x", 300) + `"}`
	if got := r.Body([]byte(big[:250]), int64(len(big))); strings.Contains(got, "p1") || !strings.Contains(got, "not kept") {
		t.Errorf("cut JSON body: %q", got)
	}
	if got := r.Body([]byte(`{"password":`), 12); strings.Contains(got, "password") {
		t.Errorf("broken JSON kept: %q", got)
	}
	// Plain text is kept up to the cap.
	plain := strings.Repeat("a", 300)
	if got := r.Body([]byte(plain), 300); !strings.HasPrefix(got, strings.Repeat("a", 250)+"…") || strings.Count(got, "a") != 251 {
		t.Errorf("plain body: %q", got)
	}
	if off, _ := NewRedactor(Capture{}); off.Body([]byte("x"), 1) != "" {
		t.Error("body kept by a route that does not capture it")
	}
}

func TestRedactorRejectsBadPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", "$", "a..", "a.", "[*]", "a[0]", "a.b[", ".."} {
		if _, err := NewRedactor(Capture{RedactJSONPaths: []string{p}}); err == nil {
			t.Errorf("path %q accepted", p)
		}
	}
}

func FuzzRedactJSON(f *testing.F) {
	f.Add("password", `{"password":"x","a":[1,{"password":2}]}`)
	f.Add("..secret", `[{"secret":{"secret":1}}]`)
	f.Add("items[*].t", `{"items":[{"t":1},2,null]}`)
	f.Fuzz(func(t *testing.T, path, body string) {
		r, err := NewRedactor(Capture{Bodies: true, MaxBodyBytes: 1 << 20, RedactJSONPaths: []string{path}})
		if err != nil {
			return
		}
		got := r.Body([]byte(body), int64(len(body)))
		if len(got) > 2*len(body)+200+len(Redacted)*len(body) {
			t.Fatalf("redaction grew %d bytes into %d", len(body), len(got))
		}
	})
}

// TestRedactorKeepsTextOnly: a body a store's text column cannot hold
// (not UTF-8, or with NUL bytes) is noted by its size; a cut that falls
// inside a character drops that character's first bytes, not the body.
func TestRedactorKeepsTextOnly(t *testing.T) {
	t.Parallel()
	r, err := NewRedactor(Capture{Bodies: true, Headers: true, MaxBodyBytes: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body  string
		total int64
		want  string
	}{
		{"\x00\x01\x02", 3, "[body of 3 bytes not kept: not text]"},
		{"ab\xffcd", 5, "[body of 5 bytes not kept: not text]"},
		{"abcdé", 90, "abcd…[90 bytes in all]"}, // é's first byte only, at the cap
		{"abcd", 4, "abcd"},
	} {
		b := []byte(c.body)
		if len(b) > 5 {
			b = b[:5]
		}
		if got := r.Body(b, c.total); got != c.want {
			t.Errorf("Body(%q, %d) = %q, want %q", c.body, c.total, got, c.want)
		}
	}
	if got := r.Headers([]Header{{"X-Name", "caf\xe9"}}); got[0].Value != "caf\uFFFD" {
		t.Errorf("a Latin-1 header value kept as %q", got[0].Value)
	}
	if _, err := NewRedactor(Capture{Bodies: true, MaxBodyBytes: 2 << 20}); err == nil || !strings.Contains(err.Error(), "1MiB") {
		t.Errorf("a 2MiB cap: %v", err)
	}
}

// FuzzRedactorBody: whatever a client or a target sends, the kept body
// is text a store's column takes (UTF-8, no NUL), never longer than the
// cap and its note, and a named field of a JSON body that is kept holds
// no value but the redaction.
func FuzzRedactorBody(f *testing.F) {
	for _, s := range []string{`{"password":"p","a":[{"password":1}]}`, "plain text", "\xff\x00", `[{"password":{"x":"y"}}]`, `{"password":"é`, ""} {
		f.Add([]byte(s), int64(len(s)))
	}
	r, err := NewRedactor(Capture{Bodies: true, MaxBodyBytes: 64, RedactJSONPaths: []string{"..password"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, total int64) {
		total = max(total, int64(len(body)))
		kept := body[:min(len(body), 64)]
		got := r.Body(kept, total)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("kept %q", got)
		}
		if len(got) > 64+120 {
			t.Fatalf("kept %d bytes of a 64-byte cap: %q", len(got), got)
		}
		var v any
		if json.Unmarshal([]byte(got), &v) == nil && strings.Contains(got, `"password"`) {
			var walk func(any)
			walk = func(v any) {
				switch t2 := v.(type) {
				case map[string]any:
					for k, c := range t2 {
						if k == "password" && c != Redacted {
							t.Fatalf("password kept as %v in %s", c, got)
						}
						walk(c)
					}
				case []any:
					for _, c := range t2 {
						walk(c)
					}
				}
			}
			walk(v)
		}
	})
}
