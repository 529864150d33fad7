package gateway

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relia-dev/relia/callstore"
)

// TestConfigReloadIsAudited: a reload that changes routes or upstreams
// is one config.reload entry in the audit log, naming what changed; one
// that changes nothing writes none.
func TestConfigReloadIsAudited(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "be")
	db := filepath.Join(t.TempDir(), "calls.db")
	g, _ := startGateway(t, fmt.Sprintf(`  calls: {store: %s, flushInterval: 10ms}
  upstreams: [{name: be, targets: [{address: %q}]}]
  routes:
    - {name: orders, match: {path: {prefix: /orders}}, upstream: be}
    - {name: users, match: {path: {prefix: /users}}, upstream: be}
`, db, be.addr()), Options{})
	same := *g.Config()
	if err := g.Reload(&same); err != nil {
		t.Fatal(err)
	}
	next := *g.Config()
	next.Spec.Routes = slices.Clone(next.Spec.Routes[:1])
	next.Spec.Routes[0].Capture = &callstore.Capture{Bodies: true}
	next.Spec.Routes = append(next.Spec.Routes, Route{Name: "carts", Match: Match{Path: &PathMatch{Prefix: "/carts"}}, Upstream: "be"})
	if err := g.Reload(&next); err != nil {
		t.Fatal(err)
	}
	entries, err := callstore.NewClient("http://"+g.AdminAddr(), nil).Audit(context.Background(), callstore.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Detail)
	}
	want := "gateway config.reload generation 3: route orders changed; route carts added; route users removed"
	if strings.Join(got, "\n") != want {
		t.Errorf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}
