package apimgmt

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/relia-dev/relia/internal/config"
)

// Kind is the kind: of API documents.
const Kind = "API"

// API is a named, versioned API that the gateway serves through some of
// its routes, the body of a `kind: API` document. Every field's comment
// is user documentation.
type API struct {
	// Metadata names the API.
	Metadata Metadata `yaml:"metadata" config:"required"`
	// Spec says what the API is and how it is served.
	Spec Spec `yaml:"spec" config:"required"`

	// doc is the OpenAPI document, read when the API was loaded.
	doc *OpenAPI
}

// Metadata names an API.
type Metadata struct {
	// Name identifies the API in the catalog, in subscriptions and in call
	// records: letters, digits, '-', '_' and '.'.
	Name string `yaml:"name" config:"required"`
}

// Spec is what an API is and how the gateway serves it.
type Spec struct {
	// Version is the API's version ("v1", "2027-03").
	Version string `yaml:"version" config:"required"`
	// Owner is the team answerable for the API.
	Owner string `yaml:"owner"`
	// Description says what the API is for, in a sentence or two.
	Description string `yaml:"description"`
	// OpenAPI is the API's OpenAPI document (YAML or JSON), a path
	// relative to this file; the developer portal shows its operations.
	OpenAPI string `yaml:"openapi"`
	// Routes are the gateway routes the API covers, by name; a route
	// belongs to one API at most.
	Routes []string `yaml:"routes" config:"required"`
	// State is where the API is in its lifecycle: draft (not served:
	// 404), published, deprecated (served, with Deprecation and Sunset
	// headers) or retired (410 naming the successor). Default published.
	State State `yaml:"state"`
	// Deprecation dates a deprecated API.
	Deprecation Deprecation `yaml:"deprecation"`
	// Successor names the API that replaces this one; retired and
	// deprecated APIs point to it.
	Successor string `yaml:"successor"`
	// Access says who may see and call the API.
	Access Access `yaml:"access"`
}

// State is an API's lifecycle state.
type State string

// The lifecycle states.
const (
	StateDraft      State = "draft"
	StatePublished  State = "published"
	StateDeprecated State = "deprecated"
	StateRetired    State = "retired"
)

// Deprecation dates a deprecated API, for its response headers.
type Deprecation struct {
	// Since is when the API was deprecated, in RFC 3339
	// ("2027-01-01T00:00:00Z"): the Deprecation header (RFC 9745).
	// Required for a deprecated API.
	Since string `yaml:"since"`
	// Sunset is when the API will stop answering, in RFC 3339: the Sunset
	// header (RFC 8594). Empty means no date is promised.
	Sunset string `yaml:"sunset"`
	// Link is a page about the deprecation, sent as a Link header with
	// rel="deprecation".
	Link string `yaml:"link"`
	// SuccessorLink is where clients find the successor (its docs or its
	// base URL), sent as a Link header with rel="successor-version". The
	// spec's successor is an API's name, not a URL, so without this no
	// successor link is sent.
	SuccessorLink string `yaml:"successorLink"`

	since, sunset time.Time
}

// Access says who may see and call an API.
type Access struct {
	// Subscription is "none" (anyone the route lets in may call; the
	// default) or "required" (a tenant calls only once its subscription
	// is approved; until then 403 subscription_pending).
	Subscription string `yaml:"subscription"`
	// AutoApprove approves requested subscriptions at once (still
	// written to the audit log).
	AutoApprove bool `yaml:"autoApprove"`
	// Tenants are the tenants that see the API in their catalog and may
	// subscribe; none means every tenant.
	Tenants []string `yaml:"tenants"`
}

// The values of Access.Subscription.
const (
	SubscriptionNone     = "none"
	SubscriptionRequired = "required"
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Name returns the API's name.
func (a *API) Name() string { return a.Metadata.Name }

// Doc returns the API's OpenAPI document, nil without one.
func (a *API) Doc() *OpenAPI { return a.doc }

// Parse reads the API documents of a config file (others are ignored)
// and checks them; data's name is used in errors and to find OpenAPI
// documents, relative to it.
func Parse(name string, data []byte) ([]*API, error) {
	docs, err := config.Parse(name, data)
	if err != nil {
		return nil, err
	}
	var (
		apis []*API
		errs []error
	)
	seen := map[string]bool{}
	routes := map[string]string{}
	for _, d := range docs {
		if d.Kind != Kind {
			continue
		}
		a := &API{}
		if err := d.Decode(a); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := a.check(d, filepath.Dir(name)); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[a.Name()] {
			errs = append(errs, d.Errorf("metadata.name", "API %q is defined twice", a.Name()))
			continue
		}
		seen[a.Name()] = true
		for i, r := range a.Spec.Routes {
			if other, ok := routes[r]; ok {
				errs = append(errs, d.Errorf(fmt.Sprintf("spec.routes[%d]", i), "route %q already belongs to API %q", r, other))
			}
			routes[r] = a.Name()
		}
		apis = append(apis, a)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return apis, nil
}

// ReadFile reads the API documents of the file at path.
func ReadFile(path string) ([]*API, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading APIs: %w", err)
	}
	return Parse(path, data)
}

func (a *API) check(d config.Document, dir string) error {
	s := &a.Spec
	if !namePattern.MatchString(a.Metadata.Name) {
		return d.Errorf("metadata.name", "%q: use letters, digits, '-', '_' and '.'", a.Metadata.Name)
	}
	switch s.State {
	case "":
		s.State = StatePublished
	case StateDraft, StatePublished, StateDeprecated, StateRetired:
	default:
		return d.Errorf("spec.state", "unknown state %q (want draft, published, deprecated or retired)", s.State)
	}
	switch s.Access.Subscription {
	case "":
		s.Access.Subscription = SubscriptionNone
	case SubscriptionNone, SubscriptionRequired:
	default:
		return d.Errorf("spec.access.subscription", "%q: want none or required", s.Access.Subscription)
	}
	if len(s.Routes) == 0 {
		return d.Errorf("spec.routes", "an API covers at least one route")
	}
	for i, r := range s.Routes {
		if r == "" {
			return d.Errorf(fmt.Sprintf("spec.routes[%d]", i), "empty route name")
		}
	}
	dep := &s.Deprecation
	for _, f := range []struct {
		field string
		in    string
		out   *time.Time
	}{{"since", dep.Since, &dep.since}, {"sunset", dep.Sunset, &dep.sunset}} {
		if f.in == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, f.in)
		if err != nil {
			return d.Errorf("spec.deprecation."+f.field, "%q is not an RFC 3339 time (2027-01-01T00:00:00Z)", f.in)
		}
		*f.out = t
	}
	for _, f := range []struct{ field, in string }{{"link", dep.Link}, {"successorLink", dep.SuccessorLink}} {
		if f.in == "" {
			continue
		}
		if u, err := url.Parse(f.in); err != nil || strings.ContainsAny(f.in, "<>\" \t\r\n") || (u.Scheme == "" && !strings.HasPrefix(f.in, "/")) {
			return d.Errorf("spec.deprecation."+f.field, "%q is not a URL (https://docs.example/orders-v2) or an absolute path (/v2/orders)", f.in)
		}
	}
	if s.State == StateDeprecated && dep.since.IsZero() {
		return d.Errorf("spec.deprecation.since", "a deprecated API needs the time it was deprecated (its Deprecation header, RFC 9745)")
	}
	if !dep.since.IsZero() && !dep.sunset.IsZero() && dep.sunset.Before(dep.since) {
		return d.Errorf("spec.deprecation.sunset", "sunset %s is before the deprecation %s", dep.Sunset, dep.Since)
	}
	if s.OpenAPI != "" {
		path := s.OpenAPI
		if !filepath.IsAbs(path) {
			path = filepath.Join(dir, path)
		}
		doc, err := ReadOpenAPI(path)
		if err != nil {
			return d.Errorf("spec.openapi", "%v", err)
		}
		a.doc = doc
	}
	return nil
}

// JSONSchema returns the JSON Schema of API documents.
func JSONSchema() ([]byte, error) { return config.Schema(Kind, API{}) }

// OpenAPI is the part of an OpenAPI (3.x) or Swagger (2.0) document the
// developer portal shows.
type OpenAPI struct {
	Title       string
	Version     string
	Description string
	Operations  []Operation
}

// Operation is one method on one path.
type Operation struct {
	Method, Path, Summary, Description string
	// Parameters are "name (in, required)".
	Parameters []string
	// Responses are "status: description".
	Responses []string
}

// ReadOpenAPI reads the operations of an OpenAPI document.
func ReadOpenAPI(path string) (*OpenAPI, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	var raw struct {
		OpenAPI string `yaml:"openapi"`
		Swagger string `yaml:"swagger"`
		Info    struct {
			Title       string `yaml:"title"`
			Version     string `yaml:"version"`
			Description string `yaml:"description"`
		} `yaml:"info"`
		Paths yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document %s: %w", path, err)
	}
	if raw.OpenAPI == "" && raw.Swagger == "" {
		return nil, fmt.Errorf("%s is not an OpenAPI document (no openapi: or swagger: field)", path)
	}
	doc := &OpenAPI{Title: raw.Info.Title, Version: raw.Info.Version, Description: raw.Info.Description}
	if raw.Paths.Kind != yaml.MappingNode {
		return doc, nil
	}
	for i := 0; i+1 < len(raw.Paths.Content); i += 2 {
		p, item := raw.Paths.Content[i].Value, raw.Paths.Content[i+1]
		if item.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			method := item.Content[j].Value
			switch method {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
			default:
				continue
			}
			var op struct {
				Summary     string `yaml:"summary"`
				Description string `yaml:"description"`
				Parameters  []struct {
					Name     string `yaml:"name"`
					In       string `yaml:"in"`
					Required bool   `yaml:"required"`
				} `yaml:"parameters"`
				Responses map[string]struct {
					Description string `yaml:"description"`
				} `yaml:"responses"`
			}
			if err := item.Content[j+1].Decode(&op); err != nil {
				return nil, fmt.Errorf("%s: paths.%s.%s: %w", path, p, method, err)
			}
			o := Operation{Method: upper(method), Path: p, Summary: op.Summary, Description: op.Description}
			for _, prm := range op.Parameters {
				req := ""
				if prm.Required {
					req = ", required"
				}
				o.Parameters = append(o.Parameters, fmt.Sprintf("%s (%s%s)", prm.Name, prm.In, req))
			}
			for _, code := range sortedKeys(op.Responses) {
				o.Responses = append(o.Responses, code+": "+op.Responses[code].Description)
			}
			doc.Operations = append(doc.Operations, o)
		}
	}
	return doc, nil
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
