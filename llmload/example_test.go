package llmload_test

import (
	"fmt"

	"github.com/relia-dev/relia/llmload"
)

func ExampleParseObjectives() {
	o, err := llmload.ParseObjectives("ttft:500ms,tpot:50ms")
	if err != nil {
		panic(err)
	}
	fmt.Println(o.TTFT, o.TPOT, o)
	// Output: 500ms 50ms ttft:500ms,tpot:50ms
}

func ExampleDetectAPI() {
	for _, path := range []string{"/v1/chat/completions", "/v1/messages", "/v1beta/models/gemini-2.0-flash:streamGenerateContent", "/events"} {
		fmt.Println(llmload.DetectAPI(path))
	}
	// Output:
	// openai
	// anthropic
	// gemini
	// sse
}
