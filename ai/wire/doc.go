// Package wire holds the wire formats of the model providers relia's AI
// gateway speaks: OpenAI's chat completions, embeddings and models
// (which Azure OpenAI and the OpenAI-compatible servers share), Anthropic's
// Messages API, Google Gemini's generateContent, AWS Bedrock's Converse,
// and the two stream framings they use: Server-Sent Events and Amazon's
// binary event stream.
//
// The types are the JSON bodies as the providers document them, with the
// fields relia reads or writes. Where relia passes a body on in the same
// format it edits the client's bytes (SetMember) rather than encoding a
// decoded copy, so members it does not name arrive as written; the types
// that relia builds for other formats keep unknown members in Extra. The
// provider simulator
// (ai/mock) and the adapters of package ai share these types, so one
// reading of each format serves both ends.
//
// Streams are read with an SSEReader, which bounds each event it buffers
// (a provider that sends an endless line cannot make relia hold more than
// MaxEvent bytes), and written with WriteSSE:
//
//	r := wire.NewSSEReader(resp.Body, 0)
//	for {
//		ev, err := r.Next()
//		if err != nil {
//			break // io.EOF at the end of the stream
//		}
//		if string(ev.Data) == "[DONE]" {
//			break
//		}
//		var chunk wire.ChatChunk
//		_ = json.Unmarshal(ev.Data, &chunk)
//	}
//
// The formats follow the providers' public API references: OpenAI's
// "Create chat completion", "Create embeddings", "List models" and its
// error object; Anthropic's "Messages", "Streaming Messages" and "Errors"
// pages; Google's "Generating content" (generateContent and
// streamGenerateContent with alt=sse); AWS's Bedrock Runtime Converse and
// ConverseStream API reference and the event stream encoding of the AWS
// SDKs. docs/ai-gateway.md lists what relia maps between them.
package wire
