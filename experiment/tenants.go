package experiment

import (
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/outcome"
)

// TenantCalls are one tenant's calls in a run's llm loads (the users
// their prompts name). Calls counts every call the load scheduled for
// the tenant, dropped arrivals included, as a phase's requests do; each
// is exactly one of:
//   - Served: the stream ended well;
//   - RefusedByQuota: relia's AI gateway refused it for the tenant's own
//     quota (429 with X-Relia-Quota). That is the gateway doing its job,
//     so availability counts it as answered (the load lists 429 among
//     its expected statuses) and goodput leaves it out; it shows here so
//     that a tenant shut out by its quota is not hidden among the
//     answered calls;
//   - Failed: anything else (an error status or event, a stall, a cut
//     stream, an arrival dropped at the in-flight cap).
type TenantCalls struct {
	Tenant         string `json:"tenant"`
	Calls          int64  `json:"calls"`
	Served         int64  `json:"served"`
	RefusedByQuota int64  `json:"refused_by_quota"`
	Failed         int64  `json:"failed"`
}

// tenantTally counts the calls of an llm load's users as they end; it is
// safe for concurrent use.
type tenantTally struct {
	mu sync.Mutex
	by map[string]*TenantCalls
}

// observe counts one ended call of tenant.
func (t *tenantTally) observe(tenant string, s *llmload.Sample) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.by == nil {
		t.by = map[string]*TenantCalls{}
	}
	c := t.by[tenant]
	if c == nil {
		c = &TenantCalls{Tenant: tenant}
		t.by[tenant] = c
	}
	c.Calls++
	switch {
	case s.Class == outcome.ClassOK:
		c.Served++
	case s.QuotaRefused:
		c.RefusedByQuota++
	default:
		c.Failed++
	}
}

// counts returns each tenant's calls, by tenant name; nil when no llm
// load named users.
func (t *tenantTally) counts() []TenantCalls {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []TenantCalls
	for _, c := range t.by {
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b TenantCalls) int { return strings.Compare(a.Tenant, b.Tenant) })
	return out
}

// tenantColumns are the headings of the per-tenant tables, the terminal's
// and the report's.
var tenantColumns = []string{"tenant", "calls", "served", "refused by quota", "failed"}

// tenantRow is one tenant's figures as the tables show them.
func tenantRow(c TenantCalls) []string {
	return []string{c.Tenant, fmtCount(c.Calls), fmtCount(c.Served), fmtCount(c.RefusedByQuota), fmtCount(c.Failed)}
}

func fmtCount(n int64) string { return strconv.FormatInt(n, 10) }
