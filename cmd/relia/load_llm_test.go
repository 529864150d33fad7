package main

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
)

func TestLoadLLMExitCodes(t *testing.T) {
	t.Parallel()
	sim, err := mock.New(mock.Options{Seed: 1, TimeToFirstToken: 20 * time.Millisecond, TokensPerSecond: 500, OutputTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	url := srv.URL + "/v1/chat/completions"
	// The generator's punctuality is not what these cases are about, so
	// its self-check is off (--min-on-time 0).
	base := []string{"load", "llm", url, "--rate", "20", "--duration", "300ms", "--min-on-time", "0", "--input-tokens", "16"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout for passes, stderr otherwise
	}{
		{"passes", []string{"--threshold", "llm_output_tokens:count==30", "--goodput", "ttft:10s"}, exitPass, "tokens: 30 output"},
		{"threshold fails", []string{"--threshold", "llm_time_to_first_token:p(50)<1"}, exitFailed, "threshold llm_time_to_first_token p(50)<1 failed"},
		{"closed model", []string{"--rate", "0", "--concurrency", "2"}, exitPass, "2 concurrent"},
		{"unknown metric", []string{"--threshold", "http_req_duration:p(99)<5"}, exitBadInput, `unknown metric "http_req_duration"`},
		{"both models", []string{"--concurrency", "2"}, exitBadInput, "not both"},
		{"bad goodput", []string{"--goodput", "ttft"}, exitBadInput, "--goodput"},
		{"bad api", []string{"--api", "grpc"}, exitBadInput, `api "grpc"`},
		{"missing dataset", []string{"--dataset", "nope.jsonl"}, exitBadInput, "nope.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append(append([]string{}, base...), tc.args...)...)
			where := errOut
			if tc.code == exitPass {
				where = out
			}
			if code != tc.code || !strings.Contains(where, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

func TestLoadLLMSegmentsMerge(t *testing.T) {
	t.Parallel()
	sim, err := mock.New(mock.Options{Seed: 2, OutputTokens: 4})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	data := filepath.Join(dir, "prompts.jsonl")
	if err := os.WriteFile(data, []byte(`{"prompt":"one two three","max_tokens":3}
{"messages":[{"role":"user","content":"four five"}],"expected_output_tokens":4}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, seg := range []string{"0/2", "1/2"} {
		out := filepath.Join(dir, strings.ReplaceAll(seg, "/", "-")+".json")
		code, _, errOut := runCLI(t, "load", "llm", srv.URL+"/v1/messages", "--dataset", data, "--rate", "20", "--duration", "400ms",
			"--min-on-time", "0", "--segment", seg, "--out", out)
		if code != exitPass {
			t.Fatalf("segment %s: exit %d: %s", seg, code, errOut)
		}
		files = append(files, out)
	}
	html := filepath.Join(dir, "report.html")
	code, out, errOut := runCLI(t, append([]string{"load", "llm", "merge", "-o", "json", "--html", html}, files...)...)
	if code != exitPass {
		t.Fatalf("merge: exit %d: %s", code, errOut)
	}
	var doc struct {
		Schema  string           `json:"schema"`
		Planned int              `json:"planned"`
		Endings map[string]int64 `json:"endings"`
		Figures struct {
			OutputTokens int64   `json:"output_tokens"`
			TTFTp50      float64 `json:"ttft_p50_ms"`
		} `json:"figures"`
		Delivered int64 `json:"delivered_output_tokens"`
		Expected  int64 `json:"expected_output_tokens"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	// 8 requests take the prompts in turn (segment 0 the even ones): 4
	// capped at 3 tokens, 4 of the mock's 4 tokens, which the second
	// prompt expects.
	if doc.Schema != "relia/llm/v1" || doc.Planned != 8 || doc.Endings["done"] != 8 || doc.Figures.OutputTokens != 4*3+4*4 ||
		doc.Expected != 16 || doc.Delivered != 16 {
		t.Errorf("merged: %+v", doc)
	}
	page, err := os.ReadFile(html)
	if err != nil || !strings.Contains(string(page), "Time to first token") {
		t.Errorf("report: %v", err)
	}
	// relia report renders the same segments as the same page.
	again := filepath.Join(dir, "again.html")
	if code, _, errOut := runCLI(t, append([]string{"report", "--html", again}, files...)...); code != exitPass {
		t.Fatalf("relia report: exit %d: %s", code, errOut)
	}
	page2, err := os.ReadFile(again)
	ttft := fmt.Sprintf("%.2fms", doc.Figures.TTFTp50)
	for _, p := range [][]byte{page, page2} {
		if !strings.Contains(string(p), "Time to first token") || !strings.Contains(string(p), ttft) {
			t.Errorf("a page lacks the TTFT chart or the merged TTFT p50 %s (%v)", ttft, err)
		}
	}
}
