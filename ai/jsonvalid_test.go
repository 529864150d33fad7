package ai

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonCases are bodies valid and not, at every edge of the grammar.
var jsonCases = []string{
	``, ` `, `{}`, ` {} `, `[]`, `[ ]`, `{ }`, `null`, `true`, `false`, `nul`, `truex`, `tru`, `nullnull`,
	`0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-05`, `1e`, `1e+`, `-1.25e3`, `2.`, `--1`, `+1`, `0x1`,
	`""`, `"a\"b"`, `"\u00e9\uD83D\uDE00"`, `"\u00g0"`, `"\u12"`, `"\x"`, `"\/\b\f\n\r\t"`, "\"a\tb\"", "\"\x7f\"", "\"\xff\xfe\"", `"abc`, `"\`,
	`{"a":1}`, `{"a" : 1 , "b":[1,2,{"c":null}]}`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `{,}`, `{"a":1`,
	`[1,2]`, `[1,]`, `[,1]`, `[1 2]`, `[1`, `[[[]]]`, `]`, `}`, `{"a":1}}`, `[1]x`, "[1]\n", "\t[1]\r\n",
	chatBodies[0], chatBodies[2], cannedAnswerForTests,
}

// cannedAnswerForTests is a provider's chat completion answer.
const cannedAnswerForTests = `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"the system stays within its error budget"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":8,"total_tokens":20}}`

func TestValidJSONAsEncodingJSON(t *testing.T) {
	cases := append([]string(nil), jsonCases...)
	// encoding/json's depth bound: 10,000 nested values pass, 10,001 fail.
	for _, n := range []int{maxJSONDepth, maxJSONDepth + 1} {
		cases = append(cases, strings.Repeat("[", n)+strings.Repeat("]", n), strings.Repeat(`{"a":`, n)+"1"+strings.Repeat("}", n))
	}
	valid := 0
	for _, c := range cases {
		got, want := validJSON([]byte(c)), json.Valid([]byte(c))
		if got != want {
			t.Errorf("validJSON(%.60q) = %v, json.Valid %v", c, got, want)
		}
		if want {
			valid++
		}
	}
	if valid < 20 || valid > len(cases)-20 {
		t.Errorf("%d of %d cases valid: the table should hold many of each", valid, len(cases))
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range jsonCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid %v", data, got, want)
		}
	})
}

// BenchmarkValidJSON weighs validJSON against json.Valid on a client's
// chat request and a provider's answer.
func BenchmarkValidJSON(b *testing.B) {
	for _, fn := range []struct {
		name  string
		valid func([]byte) bool
	}{{"relia", validJSON}, {"encoding_json", json.Valid}} {
		b.Run(fn.name, func(b *testing.B) {
			req, answer := []byte(chatBodies[0]), []byte(cannedAnswerForTests)
			b.ReportAllocs()
			for b.Loop() {
				if !fn.valid(req) || !fn.valid(answer) {
					b.Fatal("invalid")
				}
			}
		})
	}
}

// TestPlainRunMatchesTheTable: the eight-bytes-a-step scan stops where a
// byte-a-step walk of stringPlain stops, for every byte value at every
// place of a word, among plain bytes, bytes of 0x80 and above (whose
// high bit the word tests share), and bytes just above the control range.
func TestPlainRunMatchesTheTable(t *testing.T) {
	byTable := func(data []byte, i int) int {
		for i < len(data) && stringPlain[data[i]] {
			i++
		}
		return i
	}
	for _, fill := range []byte{'a', 0x80, 0xff, 0x20, 0x21, 0x23, 0x5b, 0x5d} {
		for length := range 20 {
			for at := range length {
				for c := range 256 {
					data := bytes.Repeat([]byte{fill}, length)
					data[at] = byte(c)
					for start := 0; start <= min(length, 9); start++ {
						if got, want := plainRun(data, start), byTable(data, start); got != want {
							t.Fatalf("% x from %d: plainRun %d, the table %d", data, start, got, want)
						}
					}
				}
			}
		}
	}
}
