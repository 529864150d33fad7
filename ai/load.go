package ai

import (
	"errors"
	"fmt"
	"os"

	"github.com/relia-dev/relia/internal/config"
)

// Bundle is what the AI gateway's files hold together: its config, the
// catalog (shipped models and the files' Models documents) and the
// prompts.
type Bundle struct {
	Config  *Config
	Catalog *Catalog
	Prompts []*Prompt
}

// LoadFiles reads an AI gateway from files that hold, between them, one
// AIGateway document and any number of Models and Prompt documents;
// documents of other kinds are skipped, so the AI gateway's documents
// may share a file with a Gateway.
func LoadFiles(paths ...string) (*Bundle, error) {
	var docs []config.Document
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading AI gateway config: %w", err)
		}
		d, err := config.Parse(p, data)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return bundleOf(docs)
}

func bundleOf(docs []config.Document) (*Bundle, error) {
	cat, err := catalogOf(docs)
	if err != nil {
		return nil, err
	}
	b := &Bundle{Catalog: cat}
	var errs []error
	for _, d := range docs {
		switch d.Kind {
		case Kind:
			if b.Config != nil {
				errs = append(errs, d.Errorf("kind", "a second %s document", Kind))
				continue
			}
			c := &Config{doc: d}
			if err := d.Decode(c); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := c.Validate(cat); err != nil {
				errs = append(errs, err)
				continue
			}
			b.Config = c
		case KindPrompt:
			p := &Prompt{doc: d}
			if err := d.Decode(p); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := p.compile(); err != nil {
				errs = append(errs, err)
				continue
			}
			if _, ok := cat.Lookup(p.Spec.Model); !ok {
				errs = append(errs, d.Errorf("spec.model", "unknown model %q", p.Spec.Model))
				continue
			}
			b.Prompts = append(b.Prompts, p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if b.Config == nil {
		return nil, fmt.Errorf("no document of kind %s", Kind)
	}
	return b, nil
}

// ParseBundle is LoadFiles for one file's contents.
func ParseBundle(name string, data []byte) (*Bundle, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	return bundleOf(docs)
}

// ModelsJSONSchema returns the JSON Schema of the Models kind.
func ModelsJSONSchema() ([]byte, error) { return config.Schema(KindModels, Models{}) }

// PromptJSONSchema returns the JSON Schema of the Prompt kind.
func PromptJSONSchema() ([]byte, error) { return config.Schema(KindPrompt, Prompt{}) }
