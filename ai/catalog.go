package ai

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/relia-dev/relia/internal/config"
)

// KindModels is the kind of a model catalog document.
const KindModels = "Models"

// Model types.
const (
	TypeChat      = "chat"
	TypeEmbedding = "embedding"
)

//go:embed catalog.yaml
var shippedCatalog []byte

// Models is a `kind: Models` document: entries of the model catalog.
type Models struct {
	// Metadata names the document.
	Metadata Metadata `yaml:"metadata"`
	// Spec lists the models.
	Spec ModelsSpec `yaml:"spec"`
}

// ModelsSpec lists models.
type ModelsSpec struct {
	// Models are the catalog's entries; one of the same name as a
	// shipped model replaces it.
	Models []Model `yaml:"models" config:"required"`
}

// Model is one public model: the name clients ask for, its aliases, its
// limits and its prices.
type Model struct {
	// Name is the public name clients send as "model".
	Name string `yaml:"name" config:"required"`
	// Aliases are other names for the same model ("fast", a dated
	// snapshot name).
	Aliases []string `yaml:"aliases"`
	// Type is chat (the default) or embedding.
	Type string `yaml:"type"`
	// ContextWindow is the most tokens a prompt plus its output may
	// have; zero means unknown (not checked).
	ContextWindow int `yaml:"contextWindow"`
	// MaxOutputTokens is the most tokens one answer may have; zero means
	// unknown.
	MaxOutputTokens int `yaml:"maxOutputTokens"`
	// Encoding is the model's tokenizer, by which relia counts a prompt's
	// tokens before the call when a token quota or the context window
	// needs the count: o200k_base or cl100k_base (OpenAI's BPE
	// encodings). Empty means the model's tokenizer is not known to
	// relia, and a prompt is estimated at a quarter of its bytes.
	Encoding string `yaml:"encoding"`
	// Price is what a million tokens cost.
	Price Price `yaml:"price"`
	// Providers maps a provider type (bedrock, azure, ...) to the
	// model's id there when it is not the public name.
	Providers map[string]string `yaml:"providers"`
}

// Price is a model's price per million tokens, in USD.
type Price struct {
	// Input is the price of a million prompt tokens.
	Input float64 `yaml:"input"`
	// Output is the price of a million output tokens.
	Output float64 `yaml:"output"`
	// CachedInput is the price of prompt tokens read from the
	// provider's cache; zero means the input price.
	CachedInput float64 `yaml:"cachedInput"`
}

// Cost returns what a call's usage costs.
func (p Price) Cost(u Usage) float64 {
	cached := p.CachedInput
	if cached == 0 {
		cached = p.Input
	}
	fresh := max(u.InputTokens-u.CachedTokens, 0)
	return (float64(fresh)*p.Input + float64(u.CachedTokens)*cached + float64(u.OutputTokens)*p.Output) / 1e6
}

// Catalog is the set of models relia knows: the shipped ones and those
// of the Models documents loaded over them (an entry of the same name
// replaces the shipped one).
type Catalog struct {
	models []*Model
	byName map[string]*Model
}

// Lookup finds a model by its name or an alias.
func (c *Catalog) Lookup(name string) (*Model, bool) {
	m, ok := c.byName[name]
	return m, ok
}

// Models returns the catalog's models in order of name.
func (c *Catalog) Models() []*Model { return slices.Clone(c.models) }

// ShippedCatalog returns the catalog relia ships.
func ShippedCatalog() *Catalog {
	c, err := catalogOf(nil)
	if err != nil {
		panic(err) // the embedded catalog is tested
	}
	return c
}

// LoadCatalog reads the Models documents of the given files over the
// shipped catalog.
func LoadCatalog(paths ...string) (*Catalog, error) {
	var docs []config.Document
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading model catalog: %w", err)
		}
		d, err := config.Parse(p, data)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return catalogOf(docs)
}

// ParseModels reads the Models documents in data over the shipped
// catalog; documents of other kinds are skipped.
func ParseModels(name string, data []byte) (*Catalog, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	return catalogOf(docs)
}

// catalogOf builds the catalog from the shipped document and the Models
// documents among docs, in order.
func catalogOf(docs []config.Document) (*Catalog, error) {
	shipped, err := config.Parse("catalog.yaml (shipped)", shippedCatalog)
	if err != nil {
		return nil, err
	}
	c := &Catalog{byName: map[string]*Model{}}
	owner := map[string]string{} // name or alias -> model name
	var errs []error
	for _, d := range append(shipped, docs...) {
		if d.Kind != KindModels {
			continue
		}
		var ms Models
		if err := d.Decode(&ms); err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range ms.Spec.Models {
			m := &ms.Spec.Models[i]
			at := fmt.Sprintf("spec.models[%d]", i)
			switch m.Type {
			case "":
				m.Type = TypeChat
			case TypeChat, TypeEmbedding:
			default:
				errs = append(errs, d.Errorf(at+".type", "unknown model type %q (want chat or embedding)", m.Type))
			}
			if _, ok := codecs[m.Encoding]; !ok && m.Encoding != "" {
				errs = append(errs, d.Errorf(at+".encoding", "unknown encoding %q (want %s or %s)", m.Encoding, EncodingO200k, EncodingCl100k))
			}
			if m.ContextWindow < 0 || m.MaxOutputTokens < 0 {
				errs = append(errs, d.Errorf(at, "negative contextWindow or maxOutputTokens"))
			}
			if p := m.Price; p.Input < 0 || p.Output < 0 || p.CachedInput < 0 {
				errs = append(errs, d.Errorf(at+".price", "negative price"))
			}
			if strings.TrimSpace(m.Name) == "" {
				errs = append(errs, d.Errorf(at+".name", "empty"))
				continue
			}
			// A later entry of the same name replaces the earlier one,
			// aliases included.
			if old, ok := c.byName[m.Name]; ok && old.Name == m.Name {
				for _, a := range old.Aliases {
					delete(c.byName, a)
					delete(owner, a)
				}
				c.models = slices.DeleteFunc(c.models, func(x *Model) bool { return x == old })
			}
			if o, ok := owner[m.Name]; ok && o != m.Name {
				errs = append(errs, d.Errorf(at+".name", "%q is already an alias of %q", m.Name, o))
				continue
			}
			c.byName[m.Name] = m
			owner[m.Name] = m.Name
			c.models = append(c.models, m)
			for k, a := range m.Aliases {
				if o, ok := owner[a]; ok && o != m.Name {
					errs = append(errs, d.Errorf(fmt.Sprintf("%s.aliases[%d]", at, k), "%q already names %q", a, o))
					continue
				}
				c.byName[a] = m
				owner[a] = m.Name
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	slices.SortFunc(c.models, func(a, b *Model) int { return strings.Compare(a.Name, b.Name) })
	return c, nil
}
