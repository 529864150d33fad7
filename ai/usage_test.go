package ai

import (
	"encoding/json"
	"testing"

	"github.com/relia-dev/relia/ai/wire"
)

// TestUsageOfScansAsDecodingWould: usageOf reads an answer's usage by
// scanning it, to the same figures decoding it into wire.Usage gives,
// odd values included.
func TestUsageOfScansAsDecodingWould(t *testing.T) {
	for _, body := range []string{
		`{"id":"x","usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}`,
		`{"usage":{"prompt_tokens":1200,"completion_tokens":0,"prompt_tokens_details":{"cached_tokens":1024}}}`,
		`{"usage":{"prompt_tokens_details":null,"prompt_tokens":3}}`,
		`{"usage":{"prompt_tokens":-4,"completion_tokens":"7"}}`,
		`{"usage":{"prompt_tokens":12.5,"completion_tokens":1e2}}`,
		`{"usage":{"prompt_tokens":1,"prompt_tokens":2}}`,
		`{"usage":{"prompt_tokens":012}}`,
		`{"usage":null}`,
		`{"choices":[]}`,
	} {
		// What usageOf did before it scanned: decode the member, its
		// type errors ignored.
		var want Usage
		if u, ok, _ := wire.Member([]byte(body), "usage"); ok {
			var w wire.Usage
			json.Unmarshal(u, &w)
			want = usageFromOpenAI(&w)
		}
		if got := usageOf([]byte(body)); got != want {
			t.Errorf("%s: usageOf = %+v, decoding gives %+v", body, got, want)
		}
	}
}
