package apimgmt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/clock"
)

// Store keeps subscriptions and the audit log: a callstore.DB, or a
// MemoryStore.
type Store interface {
	Subscriptions(ctx context.Context) ([]callstore.Subscription, error)
	PutSubscription(ctx context.Context, sub callstore.Subscription, e callstore.AuditEntry) (callstore.AuditEntry, error)
	AppendAudit(ctx context.Context, e callstore.AuditEntry) (callstore.AuditEntry, error)
}

// Errors of subscription changes, for callers to test with errors.Is.
var (
	ErrUnknownAPI     = errors.New("unknown API")
	ErrNoSubscription = errors.New("no such subscription")
	ErrNotVisible     = errors.New("the API is not offered to this tenant")
)

// Decision is what API management says about one call to a route: the
// gateway refuses it with Status and Reason when Allow is false, and adds
// Headers to the response when it is true.
type Decision struct {
	Allow bool
	// Status and Reason refuse the call: 404 api_draft, 410 api_retired,
	// 401 subscription_required (no tenant), 403 subscription_required,
	// subscription_pending or subscription_revoked.
	Status int
	Reason string
	// Message says more to the client: the successor, how to subscribe.
	Message string
	// API and Version name the API the route belongs to, for the call
	// record; empty for a route of no API.
	API, Version string
	// Headers go on the response: Deprecation, Sunset and Link for a
	// deprecated API.
	Headers [][2]string
}

// apiState is an API as the hot path reads it.
type apiState struct {
	api        *API
	headers    [][2]string
	retiredMsg string
}

// state is the APIs of the current config.
type state struct {
	apis    map[string]*apiState
	byRoute map[string]*apiState
	order   []string
}

type subKey struct{ tenant, api string }

// Manager enforces API lifecycles and subscriptions on calls, and changes
// subscriptions on request, writing every change to the audit log.
// Subscriptions live in the Store, so that several gateways sharing one
// database, and `relia api approve` against any of them, see the same
// ones: a Manager reloads them every RefreshEvery and at once after its
// own changes.
type Manager struct {
	store Store
	clock clock.Clock
	log   *slog.Logger

	st   atomic.Pointer[state]
	subs atomic.Pointer[map[subKey]callstore.Subscription]

	mu sync.Mutex // serialises changes
}

// Options adjust a Manager.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
}

// NewManager starts a Manager over apis with subscriptions in store,
// which it reads once now.
func NewManager(ctx context.Context, store Store, apis []*API, o Options) (*Manager, error) {
	m := &Manager{store: store, clock: clock.OrReal(o.Clock), log: o.Logger}
	if m.log == nil {
		m.log = slog.Default()
	}
	m.st.Store(buildState(apis))
	empty := map[subKey]callstore.Subscription{}
	m.subs.Store(&empty)
	if err := m.Refresh(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func buildState(apis []*API) *state {
	s := &state{apis: map[string]*apiState{}, byRoute: map[string]*apiState{}}
	for _, a := range apis {
		as := &apiState{api: a, headers: lifecycleHeaders(a), retiredMsg: "this API is retired"}
		if a.Spec.Successor != "" {
			as.retiredMsg = "this API is retired; use " + a.Spec.Successor
		}
		s.apis[a.Name()] = as
		s.order = append(s.order, a.Name())
		for _, r := range a.Spec.Routes {
			s.byRoute[r] = as
		}
	}
	slices.Sort(s.order)
	return s
}

// lifecycleHeaders are the response headers of a deprecated API:
// Deprecation as RFC 9745 writes it (a structured-field date: "@" and
// Unix seconds), Sunset as an HTTP-date (RFC 8594), and Links to the
// deprecation notice and the successor's URL.
func lifecycleHeaders(a *API) [][2]string {
	if a.Spec.State != StateDeprecated {
		return nil
	}
	dep := a.Spec.Deprecation
	h := [][2]string{{"Deprecation", "@" + strconv.FormatInt(dep.since.Unix(), 10)}}
	if !dep.sunset.IsZero() {
		h = append(h, [2]string{"Sunset", dep.sunset.UTC().Format(http.TimeFormat)})
	}
	if dep.Link != "" {
		h = append(h, [2]string{"Link", "<" + dep.Link + `>; rel="deprecation"; type="text/html"`})
	}
	if dep.SuccessorLink != "" {
		h = append(h, [2]string{"Link", "<" + dep.SuccessorLink + `>; rel="successor-version"`})
	}
	return h
}

// SetAPIs replaces the APIs (a config reload) and writes what changed
// to the audit log: APIs added, removed, or moved to another state.
func (m *Manager) SetAPIs(ctx context.Context, apis []*API, actor string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.st.Load()
	next := buildState(apis)
	m.st.Store(next)
	var errs []error
	audit := func(action, api, detail string) {
		if _, err := m.store.AppendAudit(ctx, callstore.AuditEntry{Time: m.clock.Now(), Actor: actor, Action: action, API: api, Detail: detail}); err != nil {
			errs = append(errs, err)
		}
	}
	for _, name := range next.order {
		a := next.apis[name].api
		prev, ok := old.apis[name]
		switch {
		case !ok:
			audit("config.api_added", name, fmt.Sprintf("%s %s, %s", name, a.Spec.Version, a.Spec.State))
		case prev.api.Spec.State != a.Spec.State || prev.api.Spec.Version != a.Spec.Version:
			audit("config.api_changed", name, fmt.Sprintf("%s %s %s -> %s %s", name, prev.api.Spec.Version, prev.api.Spec.State, a.Spec.Version, a.Spec.State))
		}
	}
	for _, name := range old.order {
		if _, ok := next.apis[name]; !ok {
			audit("config.api_removed", name, name)
		}
	}
	return errors.Join(errs...)
}

// Check decides a call to route by tenant. It reads two maps and does
// not allocate, so the gateway calls it on every request.
func (m *Manager) Check(route, tenant string) Decision {
	as := m.st.Load().byRoute[route]
	if as == nil {
		return Decision{Allow: true}
	}
	a := as.api
	d := Decision{API: a.Name(), Version: a.Spec.Version}
	switch a.Spec.State {
	case StateDraft:
		d.Status, d.Reason, d.Message = http.StatusNotFound, "api_draft", "this API is a draft and not served yet"
		return d
	case StateRetired:
		d.Status, d.Reason, d.Message = http.StatusGone, "api_retired", as.retiredMsg
		return d
	}
	if a.Spec.Access.Subscription == SubscriptionRequired {
		if tenant == "" {
			d.Status, d.Reason, d.Message = http.StatusUnauthorized, "subscription_required", "this API needs credentials of a subscribed tenant"
			return d
		}
		sub, ok := (*m.subs.Load())[subKey{tenant, a.Name()}]
		switch {
		case !ok:
			d.Status, d.Reason, d.Message = http.StatusForbidden, "subscription_required", "subscribe to this API first (relia api subscribe)"
			return d
		case sub.State == callstore.SubscriptionPending:
			d.Status, d.Reason, d.Message = http.StatusForbidden, "subscription_pending", "the subscription awaits an admin's approval"
			return d
		case sub.State != callstore.SubscriptionApproved:
			d.Status, d.Reason, d.Message = http.StatusForbidden, "subscription_revoked", "the subscription was revoked"
			return d
		}
	}
	d.Allow = true
	d.Headers = as.headers
	return d
}

// Refresh reloads the subscriptions from the store.
func (m *Manager) Refresh(ctx context.Context) error {
	subs, err := m.store.Subscriptions(ctx)
	if err != nil {
		return fmt.Errorf("loading subscriptions: %w", err)
	}
	idx := make(map[subKey]callstore.Subscription, len(subs))
	for _, s := range subs {
		idx[subKey{s.Tenant, s.API}] = s
	}
	m.subs.Store(&idx)
	return nil
}

// Run refreshes the subscriptions every interval (5s when 0) until ctx
// ends, so that changes made through another gateway or the database
// take effect here too.
func (m *Manager) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Second
	}
	for clock.Sleep(ctx, m.clock, every) == nil {
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("refreshing subscriptions failed; keeping the last ones", "err", err)
		}
	}
}

// Subscriptions returns every subscription, by tenant and API.
func (m *Manager) Subscriptions() []callstore.Subscription {
	subs := *m.subs.Load()
	out := make([]callstore.Subscription, 0, len(subs))
	for _, s := range subs {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b callstore.Subscription) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.API, b.API))
	})
	return out
}

// visible reports whether tenant sees a in its catalog.
func visible(a *API, tenant string) bool {
	return a.Spec.State != StateDraft && (len(a.Spec.Access.Tenants) == 0 || slices.Contains(a.Spec.Access.Tenants, tenant))
}

// Subscribe requests tenant's access to api: pending until approved, or
// approved at once for an API that auto-approves. Requesting again
// after a revocation asks anew.
func (m *Manager) Subscribe(ctx context.Context, tenant, api, actor, note string) (callstore.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	as := m.st.Load().apis[api]
	if as == nil {
		return callstore.Subscription{}, fmt.Errorf("subscribing %s to %s: %w", tenant, api, ErrUnknownAPI)
	}
	if tenant == "" || !visible(as.api, tenant) {
		return callstore.Subscription{}, fmt.Errorf("subscribing %q to %s: %w", tenant, api, ErrNotVisible)
	}
	if cur, ok := (*m.subs.Load())[subKey{tenant, api}]; ok && cur.State != callstore.SubscriptionRevoked {
		return cur, nil
	}
	now := m.clock.Now().UTC()
	sub := callstore.Subscription{Tenant: tenant, API: api, State: callstore.SubscriptionPending, RequestedAt: now, Note: note}
	action := "subscription.request"
	if as.api.Spec.Access.AutoApprove {
		sub.State, sub.DecidedAt, sub.DecidedBy = callstore.SubscriptionApproved, now, "auto-approve"
		action = "subscription.auto_approve"
	}
	return sub, m.put(ctx, sub, callstore.AuditEntry{Time: now, Actor: actor, Action: action, Tenant: tenant, API: api, Detail: note})
}

// Approve approves tenant's subscription to api.
func (m *Manager) Approve(ctx context.Context, tenant, api, actor, note string) (callstore.Subscription, error) {
	return m.decide(ctx, tenant, api, actor, note, callstore.SubscriptionApproved, "subscription.approve")
}

// Revoke revokes tenant's subscription to api: its calls get 403
// subscription_revoked from then on.
func (m *Manager) Revoke(ctx context.Context, tenant, api, actor, note string) (callstore.Subscription, error) {
	return m.decide(ctx, tenant, api, actor, note, callstore.SubscriptionRevoked, "subscription.revoke")
}

func (m *Manager) decide(ctx context.Context, tenant, api, actor, note, to, action string) (callstore.Subscription, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.Refresh(ctx); err != nil {
		return callstore.Subscription{}, err
	}
	sub, ok := (*m.subs.Load())[subKey{tenant, api}]
	if !ok {
		return sub, fmt.Errorf("%s of %s to %s: %w", action, tenant, api, ErrNoSubscription)
	}
	now := m.clock.Now().UTC()
	sub.State, sub.DecidedAt, sub.DecidedBy = to, now, actor
	if note != "" {
		sub.Note = note
	}
	return sub, m.put(ctx, sub, callstore.AuditEntry{Time: now, Actor: actor, Action: action, Tenant: tenant, API: api, Detail: note})
}

func (m *Manager) put(ctx context.Context, sub callstore.Subscription, e callstore.AuditEntry) error {
	if _, err := m.store.PutSubscription(ctx, sub, e); err != nil {
		return err
	}
	return m.Refresh(ctx)
}

// MemoryStore keeps subscriptions and the audit log in memory, for a
// gateway without a call store (they are lost when it stops) and for
// tests.
type MemoryStore struct {
	mu    sync.Mutex
	subs  map[subKey]callstore.Subscription
	Audit []callstore.AuditEntry
}

// Subscriptions returns the subscriptions.
func (s *MemoryStore) Subscriptions(context.Context) ([]callstore.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]callstore.Subscription, 0, len(s.subs))
	for _, v := range s.subs {
		out = append(out, v)
	}
	return out, nil
}

// PutSubscription stores sub and appends e.
func (s *MemoryStore) PutSubscription(ctx context.Context, sub callstore.Subscription, e callstore.AuditEntry) (callstore.AuditEntry, error) {
	s.mu.Lock()
	if s.subs == nil {
		s.subs = map[subKey]callstore.Subscription{}
	}
	s.subs[subKey{sub.Tenant, sub.API}] = sub
	s.mu.Unlock()
	return s.AppendAudit(ctx, e)
}

// AppendAudit appends e.
func (s *MemoryStore) AppendAudit(_ context.Context, e callstore.AuditEntry) (callstore.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Seq = int64(len(s.Audit) + 1)
	s.Audit = append(s.Audit, e)
	return e, nil
}
