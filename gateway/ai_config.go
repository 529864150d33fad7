package gateway

import (
	"fmt"

	"github.com/relia-dev/relia/ai"
)

// checkAI validates a route that the AI gateway serves: it has no
// upstream, and none of the policies that only mean something for a
// pool (the AIGateway document's routes say how calls fail over).
func (r Route) checkAI(p *problems, at string) {
	notHere := func(field string) {
		p.add(at+"."+field, "not on an ai route: the AIGateway document says how its calls are retried and fail over")
	}
	if r.Upstream != "" {
		p.add(at+".ai", "a route has an upstream or an ai, not both")
	}
	if r.Fallback != nil {
		notHere("fallback")
	}
	if r.Retry != nil {
		notHere("retry")
	}
	if r.Hedge != nil {
		notHere("hedge")
	}
	if r.Cache != nil {
		notHere("cache")
	}
	if len(r.Upgrades) > 0 {
		notHere("upgrades")
	}
}

// parseAI reads the AI gateway of the config's file, when a route names
// one: its AIGateway document with the Models and Prompt documents
// beside it.
func (c *Config) parseAI(name string, data []byte) error {
	if !c.hasAIRoute() {
		return nil
	}
	b, err := ai.ParseBundle(name, data)
	if err != nil {
		return err
	}
	return c.SetAI(b)
}

func (c *Config) hasAIRoute() bool {
	for _, r := range c.Spec.Routes {
		if r.AI != "" {
			return true
		}
	}
	return false
}

// onlyAIRoutes reports whether the spec has routes and all are ai
// routes, which need no upstream.
func (s *Spec) onlyAIRoutes() bool {
	for _, r := range s.Routes {
		if r.AI == "" {
			return false
		}
	}
	return len(s.Routes) > 0
}

// SetAI gives the config the AI gateway its ai routes name, for a config
// built in Go (Parse reads it from the config's file). Every ai route
// must name b's AIGateway document.
func (c *Config) SetAI(b *ai.Bundle) error {
	for i, r := range c.Spec.Routes {
		if r.AI != "" && (b == nil || b.Config == nil || r.AI != b.Config.Metadata.Name) {
			have := "none"
			if b != nil && b.Config != nil {
				have = fmt.Sprintf("%q", b.Config.Metadata.Name)
			}
			return c.errorf(fmt.Sprintf("spec.routes[%d].ai", i), "no AIGateway document named %q (the file has %s)", r.AI, have)
		}
	}
	c.ai = b
	return nil
}

// AI returns the AI gateway the config's ai routes are served by; nil
// when no route is one.
func (c *Config) AI() *ai.Bundle { return c.ai }
