package ai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"testing/iotest"

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

// TestReadAtMostSizedFitsASmallBody: a body under readChunk whose head
// announced its length is read into a buffer of its size and one byte,
// not grown; one announced larger starts at readChunk, whatever it said.
func TestReadAtMostSizedFitsASmallBody(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 164)
	got, err := readAtMostSized(bytes.NewReader(body), 4<<20, 164)
	if err != nil || len(got) != 164 || cap(got) != 165 {
		t.Errorf("164 bytes announced: %d bytes in %d, %v; want 164 in 165", len(got), cap(got), err)
	}
	got, _ = readAtMostSized(iotest.OneByteReader(bytes.NewReader(body)), 4<<20, 1<<30)
	if len(got) != 164 || cap(got) != readChunk {
		t.Errorf("1 GiB announced, 164 bytes sent: %d bytes in %d; want 164 in %d", len(got), cap(got), readChunk)
	}
}

// TestReadAtMostReadsAsLimitReader: readAtMost gives what io.ReadAll of
// an io.LimitReader of limit+1 bytes gives, whole bodies, bodies one past
// the limit, readers that return a byte at a time and readers that fail.
func TestReadAtMostReadsAsLimitReader(t *testing.T) {
	fail := errors.New("reset")
	for _, size := range []int{0, 1, 511, 512, 513, 2000} {
		for _, limit := range []int{0, 1, 511, 512, 1999, 2000, 4096} {
			data := bytes.Repeat([]byte("x"), size)
			for name, mk := range map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(data) },
				"bytewise": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
				"failing":  func() io.Reader { return io.MultiReader(bytes.NewReader(data), iotest.ErrReader(fail)) },
			} {
				want, werr := io.ReadAll(io.LimitReader(mk(), int64(limit)+1))
				got, err := readAtMost(mk(), limit)
				if !bytes.Equal(got, want) || !errors.Is(err, werr) && err != werr {
					t.Errorf("%s size %d limit %d: %d bytes, %v; want %d bytes, %v", name, size, limit, len(got), err, len(want), werr)
				}
				// An announced length, true or not, changes only the
				// first buffer's size.
				for _, announced := range []int64{-1, 1, int64(size) - 1, int64(size), int64(size) + 1, 1 << 40} {
					got, err := readAtMostSized(mk(), limit, announced)
					if !bytes.Equal(got, want) || !errors.Is(err, werr) && err != werr {
						t.Errorf("%s size %d limit %d announced %d: %d bytes, %v; want %d bytes, %v", name, size, limit, announced, len(got), err, len(want), werr)
					}
				}
			}
		}
	}
}
