package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/internal/config"
)

// KindPrompt is the kind of a prompt document.
const KindPrompt = "Prompt"

// Prompt is a `kind: Prompt` document: a prompt served as an API, POST
// /prompts/{name}, JSON inputs in and JSON out, so that a team calls
// "summarize" without knowing which model does it. Several documents of
// one name with different spec.version numbers are versions of it; the
// highest serves unless the call asks for another (?version=N).
type Prompt struct {
	// Metadata names the prompt: its API is POST /prompts/{name}.
	Metadata Metadata `yaml:"metadata"`
	// Spec is the prompt's template, inputs and model.
	Spec PromptSpec `yaml:"spec"`

	doc      config.Document
	tmpls    []*template.Template
	schema   *jsonschema.Schema
	schemaJS json.RawMessage
}

// PromptSpec is a prompt's body.
type PromptSpec struct {
	// Version numbers the prompt's versions, from 1.
	Version int `yaml:"version" config:"required"`
	// Description says what the prompt does, for its callers.
	Description string `yaml:"description"`
	// Model is the public model or alias that answers it.
	Model string `yaml:"model" config:"required"`
	// Inputs are the typed values a call sends.
	Inputs []PromptInput `yaml:"inputs"`
	// Messages are the chat's messages, each content a Go text/template
	// over the inputs ({{.text}}).
	Messages []PromptMessage `yaml:"messages" config:"required"`
	// MaxTokens caps the answer.
	MaxTokens int `yaml:"maxTokens"`
	// Temperature is the sampling temperature.
	Temperature *float64 `yaml:"temperature"`
	// Output, when it has a schema, makes the answer structured: the
	// model is asked for JSON matching the schema (response_format
	// json_schema) and an answer that does not validate is refused.
	Output PromptOutput `yaml:"output"`
}

// PromptInput is one typed input of a prompt.
type PromptInput struct {
	// Name is the input's key in the call's JSON and in the template.
	Name string `yaml:"name" config:"required"`
	// Type is string (the default), number, integer or boolean.
	Type string `yaml:"type"`
	// Optional inputs may be left out (they are then empty in the
	// template).
	Optional bool `yaml:"optional"`
	// MaxLength bounds a string input's length in bytes; default 65536.
	MaxLength int `yaml:"maxLength"`
	// Enum, when set, lists the values a string input may take.
	Enum []string `yaml:"enum"`
}

// PromptMessage is one message of a prompt's template.
type PromptMessage struct {
	// Role is system, developer, user or assistant.
	Role string `yaml:"role" config:"required"`
	// Content is a Go text/template over the inputs: "Summarize:
	// {{.text}}".
	Content string `yaml:"content" config:"required"`
}

// PromptOutput is the structure a prompt's answer must have.
type PromptOutput struct {
	// Schema is a JSON Schema (written as YAML) the answer must match.
	Schema yaml.Node `yaml:"schema"`
}

// ParsePrompts reads the Prompt documents in data; documents of other
// kinds are skipped.
func ParsePrompts(name string, data []byte) ([]*Prompt, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var out []*Prompt
	var errs []error
	for _, d := range docs {
		if d.Kind != KindPrompt {
			continue
		}
		p := &Prompt{doc: d}
		if err := d.Decode(p); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := p.compile(); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// LoadPrompts reads the Prompt documents of the given files.
func LoadPrompts(paths ...string) ([]*Prompt, error) {
	var out []*Prompt
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading prompts: %w", err)
		}
		ps, err := ParsePrompts(path, data)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

var inputTypes = []string{"string", "number", "integer", "boolean"}

func (p *Prompt) compile() error {
	var errs []error
	bad := func(path, format string, args ...any) { errs = append(errs, p.doc.Errorf(path, format, args...)) }
	if p.Spec.Version < 1 {
		bad("spec.version", "must be 1 or more")
	}
	seen := map[string]bool{}
	for i := range p.Spec.Inputs {
		in := &p.Spec.Inputs[i]
		if in.Type == "" {
			in.Type = "string"
		}
		if !slices.Contains(inputTypes, in.Type) {
			bad(fmt.Sprintf("spec.inputs[%d].type", i), "unknown type %q (want string, number, integer or boolean)", in.Type)
		}
		if seen[in.Name] {
			bad(fmt.Sprintf("spec.inputs[%d].name", i), "duplicate input %q", in.Name)
		}
		seen[in.Name] = true
		if in.MaxLength < 0 {
			bad(fmt.Sprintf("spec.inputs[%d].maxLength", i), "negative")
		}
	}
	for i, m := range p.Spec.Messages {
		switch m.Role {
		case "system", "user", "assistant", "developer":
		default:
			bad(fmt.Sprintf("spec.messages[%d].role", i), "unknown role %q (want system, user or assistant)", m.Role)
		}
		t, err := template.New(fmt.Sprint(i)).Option("missingkey=error").Parse(m.Content)
		if err != nil {
			bad(fmt.Sprintf("spec.messages[%d].content", i), "%v", err)
			continue
		}
		p.tmpls = append(p.tmpls, t)
	}
	if p.Spec.MaxTokens < 0 {
		bad("spec.maxTokens", "negative")
	}
	if p.Spec.Output.Schema.Kind != 0 {
		var v any
		if err := p.Spec.Output.Schema.Decode(&v); err != nil {
			bad("spec.output.schema", "%v", err)
		} else if js, err := json.Marshal(v); err != nil {
			bad("spec.output.schema", "not expressible as JSON: %v", err)
		} else {
			doc, _ := jsonschema.UnmarshalJSON(bytes.NewReader(js))
			c := jsonschema.NewCompiler()
			if err := c.AddResource("prompt.json", doc); err != nil {
				bad("spec.output.schema", "%v", err)
			} else if sch, err := c.Compile("prompt.json"); err != nil {
				bad("spec.output.schema", "not a valid JSON Schema: %v", err)
			} else {
				p.schema, p.schemaJS = sch, js
			}
		}
	}
	return errors.Join(errs...)
}

// promptState is a prompt's versions, newest last.
type promptState struct {
	versions []*Prompt
}

func (s *Service) buildPrompts(st *state, prompts []*Prompt) error {
	st.prompts = map[string]*promptState{}
	var errs []error
	for _, p := range prompts {
		if _, ok := st.catalog.Lookup(p.Spec.Model); !ok {
			errs = append(errs, p.doc.Errorf("spec.model", "unknown model %q", p.Spec.Model))
			continue
		}
		ps := st.prompts[p.Metadata.Name]
		if ps == nil {
			ps = &promptState{}
			st.prompts[p.Metadata.Name] = ps
		}
		for _, v := range ps.versions {
			if v.Spec.Version == p.Spec.Version {
				errs = append(errs, p.doc.Errorf("spec.version", "prompt %q has a second version %d", p.Metadata.Name, p.Spec.Version))
			}
		}
		ps.versions = append(ps.versions, p)
		slices.SortFunc(ps.versions, func(a, b *Prompt) int { return a.Spec.Version - b.Spec.Version })
	}
	return errors.Join(errs...)
}

// servePrompt serves POST /prompts/{name}: the inputs (a JSON object)
// checked against their types, the template rendered, the model called,
// the answer returned as JSON and, with a schema, checked.
func (s *Service) servePrompt(ctx context.Context, w http.ResponseWriter, r *Request, st *state, c *caller, name string, body []byte) {
	eg := openAIEgress{}
	ps := st.prompts[name]
	if ps == nil {
		eg.writeError(w, &apiError{status: http.StatusNotFound, typ: wire.ErrTypeNotFound, code: "prompt_not_found", reason: "prompt_not_found", message: fmt.Sprintf("no prompt %q", name)})
		return
	}
	if !c.mayPrompt(name) {
		eg.writeError(w, &apiError{status: http.StatusForbidden, typ: wire.ErrTypePermission, code: "prompt_not_allowed", reason: "prompt_not_allowed", message: fmt.Sprintf("tenant %q may not call prompt %q", c.tenantName(), name)})
		return
	}
	p := ps.versions[len(ps.versions)-1]
	q, _ := url.ParseQuery(r.Query) // as URL.Query reads it
	if v := q.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		i := slices.IndexFunc(ps.versions, func(x *Prompt) bool { return x.Spec.Version == n })
		if err != nil || i < 0 {
			eg.writeError(w, &apiError{status: http.StatusNotFound, typ: wire.ErrTypeNotFound, code: "prompt_version_not_found", message: fmt.Sprintf("prompt %q has no version %q", name, v)})
			return
		}
		p = ps.versions[i]
	}
	req, aerr := p.request(body)
	if aerr != nil {
		eg.writeError(w, aerr)
		return
	}
	s.chat(ctx, w, st, c, req, promptEgress{p: p}, "prompt")
}

// request renders the prompt with the call's inputs.
func (p *Prompt) request(body []byte) (*wire.ChatRequest, *apiError) {
	var in map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, badRequest("the inputs must be a JSON object: " + err.Error())
	}
	vals := map[string]any{}
	for _, d := range p.Spec.Inputs {
		raw, ok := in[d.Name]
		if !ok {
			if !d.Optional {
				return nil, badRequest(fmt.Sprintf("input %q: required", d.Name))
			}
			vals[d.Name] = ""
			continue
		}
		v, err := d.parse(raw)
		if err != nil {
			return nil, badRequest(fmt.Sprintf("input %q: %v", d.Name, err))
		}
		vals[d.Name] = v
	}
	for k := range in {
		if !slices.ContainsFunc(p.Spec.Inputs, func(d PromptInput) bool { return d.Name == k }) {
			return nil, badRequest(fmt.Sprintf("input %q: the prompt has no such input", k))
		}
	}
	req := &wire.ChatRequest{Model: p.Spec.Model, Temperature: p.Spec.Temperature}
	if p.Spec.MaxTokens > 0 {
		n := p.Spec.MaxTokens
		req.MaxTokens = &n
	}
	for i, t := range p.tmpls {
		var b strings.Builder
		if err := t.Execute(&b, vals); err != nil {
			return nil, badRequest(fmt.Sprintf("rendering message %d: %v", i, err))
		}
		req.Messages = append(req.Messages, wire.ChatMessage{Role: p.Spec.Messages[i].Role, Content: wire.TextContent(b.String())})
	}
	if p.schema != nil {
		rf, _ := json.Marshal(map[string]any{"type": "json_schema", "json_schema": map[string]any{"name": p.Metadata.Name, "strict": true, "schema": p.schemaJS}})
		req.ResponseFormat = rf
	}
	return req, nil
}

// parse checks one input's JSON value against its declared type.
func (d *PromptInput) parse(raw json.RawMessage) (any, error) {
	switch d.Type {
	case "number", "integer":
		var f float64
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, fmt.Errorf("want a number")
		}
		if d.Type == "integer" && f != math.Trunc(f) {
			return nil, fmt.Errorf("want an integer")
		}
		return f, nil
	case "boolean":
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return nil, fmt.Errorf("want true or false")
		}
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("want a string")
	}
	limit := orDefault(d.MaxLength, 65536)
	if len(s) > limit {
		return nil, fmt.Errorf("%d bytes, over the limit of %d", len(s), limit)
	}
	if len(d.Enum) > 0 && !slices.Contains(d.Enum, s) {
		return nil, fmt.Errorf("%q is not one of %v", s, d.Enum)
	}
	return s, nil
}

// PromptAnswer is the body answering a prompt call.
type PromptAnswer struct {
	Prompt  string `json:"prompt"`
	Version int    `json:"version"`
	Model   string `json:"model"`
	// Output is the answer: a string, or the JSON value a structured
	// prompt's schema describes.
	Output any   `json:"output"`
	Usage  Usage `json:"usage"`
}

// promptEgress answers prompt calls.
type promptEgress struct {
	openAIEgress
	p *Prompt
}

func (e promptEgress) writeResponse(w http.ResponseWriter, resp *wire.ChatResponse, raw []byte, t *target) {
	resp = decodeChat(resp, raw)
	p := e.p
	text := ""
	if len(resp.Choices) > 0 {
		text = resp.Choices[0].Message.Text()
	}
	ans := PromptAnswer{Prompt: p.Metadata.Name, Version: p.Spec.Version, Model: t.route.model.Name, Output: text, Usage: usageFromOpenAI(resp.Usage)}
	if p.schema != nil {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
		if err == nil {
			err = p.schema.Validate(v)
		}
		if err != nil {
			e.writeError(w, &apiError{status: http.StatusBadGateway, typ: wire.ErrTypeServer, code: "output_invalid", reason: "output_invalid",
				message: fmt.Sprintf("the model's answer does not match the prompt's output schema: %v", err)})
			return
		}
		ans.Output = json.RawMessage(text)
	}
	writeJSON(w, http.StatusOK, ans)
}
