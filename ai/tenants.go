package ai

import (
	"fmt"
	"slices"
)

// tenantState is a tenant built for calls.
type tenantState struct {
	cfg      *Tenant
	models   map[string]bool // public names; nil means all
	keyNames map[string]string
}

// caller is who makes a call: their tenant (nil for the anonymous
// caller of a config without tenants, or a host's caller the config
// does not list) and key id.
type caller struct {
	tenant *tenantState
	name   string
	key    string
	// hook is the request's record hook (WithRecordHook); nil without.
	hook func(*Record)
}

func (s *Service) buildTenants(st *state, cfg *Config) error {
	for i := range cfg.Spec.Tenants {
		t := &cfg.Spec.Tenants[i]
		ts := &tenantState{cfg: t, keyNames: map[string]string{}}
		if len(t.Models) > 0 {
			ts.models = map[string]bool{}
			for _, m := range t.Models {
				mm, _ := st.catalog.Lookup(m)
				ts.models[mm.Name] = true
			}
		}
		for k, c := range t.Keys {
			key, err := c.secret()
			if err != nil {
				return cfg.errorf(fmt.Sprintf("spec.tenants[%d].keys[%d]", i, k), "%v", err)
			}
			name := c.Name
			if name == "" {
				name = fmt.Sprintf("%s-key-%d", t.Name, k+1)
			}
			st.byKey[key] = ts
			ts.keyNames[key] = name
		}
		st.tenants = append(st.tenants, ts)
	}
	return nil
}

func (st *state) tenant(name string) *tenantState {
	for _, t := range st.tenants {
		if t.cfg.Name == name {
			return t
		}
	}
	return nil
}

// mayCall reports whether the caller may call model m.
func (c *caller) mayCall(m *Model) bool {
	return c.tenant == nil || c.tenant.models == nil || c.tenant.models[m.Name]
}

// mayPrompt reports whether the caller may call prompt name.
func (c *caller) mayPrompt(name string) bool {
	return c.tenant == nil || len(c.tenant.cfg.Prompts) == 0 || slices.Contains(c.tenant.cfg.Prompts, name)
}

// tenantName is the tenant as metrics and records name it.
func (c *caller) tenantName() string {
	if c.name == "" {
		return "anonymous"
	}
	return c.name
}
