package apimgmt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/report"
)

// CatalogSchema names the catalog's JSON format.
const CatalogSchema = "relia/api-catalog/v1"

// Catalog is what one tenant may see and subscribe to.
type Catalog struct {
	Schema string         `json:"schema"`
	Tenant string         `json:"tenant"`
	APIs   []CatalogEntry `json:"apis"`
}

// CatalogEntry is one API in a tenant's catalog.
type CatalogEntry struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Owner       string `json:"owner,omitempty"`
	Description string `json:"description,omitempty"`
	State       State  `json:"state"`
	// Sunset is when a deprecated API stops answering (RFC 3339).
	Sunset     string      `json:"sunset,omitempty"`
	Successor  string      `json:"successor,omitempty"`
	Routes     []string    `json:"routes"`
	Operations []Operation `json:"operations,omitempty"`
	// Subscription is "none" (no subscription needed), or the tenant's
	// subscription state: "not_subscribed", "pending", "approved",
	// "revoked".
	Subscription string `json:"subscription"`
}

// Catalog returns the APIs tenant sees: every API that is not a draft
// and that offers itself to the tenant, by name.
func (m *Manager) Catalog(tenant string) Catalog {
	st := m.st.Load()
	subs := *m.subs.Load()
	c := Catalog{Schema: CatalogSchema, Tenant: tenant, APIs: []CatalogEntry{}}
	for _, name := range st.order {
		a := st.apis[name].api
		if !visible(a, tenant) {
			continue
		}
		e := CatalogEntry{Name: name, Version: a.Spec.Version, Owner: a.Spec.Owner, Description: a.Spec.Description,
			State: a.Spec.State, Successor: a.Spec.Successor, Routes: a.Spec.Routes, Subscription: SubscriptionNone}
		if !a.Spec.Deprecation.sunset.IsZero() {
			e.Sunset = a.Spec.Deprecation.sunset.UTC().Format(time.RFC3339)
		}
		if a.doc != nil {
			e.Operations = a.doc.Operations
		}
		if a.Spec.Access.Subscription == SubscriptionRequired {
			e.Subscription = "not_subscribed"
			if s, ok := subs[subKey{tenant, name}]; ok {
				e.Subscription = s.State
			}
		}
		c.APIs = append(c.APIs, e)
	}
	return c
}

// Portal returns the tenant's developer portal: one self-contained HTML
// page (the report package's) listing its APIs, each API's operations
// from its OpenAPI document, and how to get access. adminURL is what the
// page's instructions name for `relia api subscribe --admin`.
func (m *Manager) Portal(tenant, adminURL string) *report.Page {
	c := m.Catalog(tenant)
	page := &report.Page{Title: "APIs for " + tenant, Subtitle: fmt.Sprintf("%d APIs · developer portal of the relia gateway", len(c.APIs))}
	list := report.Table{Title: "APIs", Columns: []string{"API", "version", "state", "owner", "access", "description"}}
	for _, e := range c.APIs {
		list.Rows = append(list.Rows, []string{e.Name, e.Version, string(e.State), e.Owner, accessWords(e.Subscription), e.Description})
		list.RowStatus = append(list.RowStatus, stateStatus(e))
	}
	page.Sections = append(page.Sections, report.Section{
		Title: "APIs",
		Text: "The APIs this tenant may see. A deprecated API still answers, with Deprecation and Sunset headers; " +
			"a retired one answers 410 and names its successor.",
		Tables: []report.Table{list},
	})
	for _, e := range c.APIs {
		sec := report.Section{Title: e.Name + " " + e.Version}
		var text []string
		if e.Description != "" {
			text = append(text, e.Description)
		}
		switch e.State {
		case StateDeprecated:
			msg := "Deprecated"
			if e.Sunset != "" {
				msg += ": it stops answering at " + e.Sunset
			}
			if e.Successor != "" {
				msg += ". Move to " + e.Successor + "."
			}
			text = append(text, msg)
		case StateRetired:
			msg := "Retired: calls get 410 Gone."
			if e.Successor != "" {
				msg += " Use " + e.Successor + "."
			}
			text = append(text, msg)
		}
		text = append(text, "How to get access: "+accessHowTo(e, tenant, adminURL))
		sec.Text = strings.Join(text, "\n\n")
		if len(e.Operations) > 0 {
			ops := report.Table{Title: "Operations", Columns: []string{"method", "path", "summary", "parameters", "responses"}}
			for _, o := range e.Operations {
				ops.Rows = append(ops.Rows, []string{o.Method, o.Path, o.Summary, strings.Join(o.Parameters, "; "), strings.Join(o.Responses, "; ")})
			}
			sec.Tables = append(sec.Tables, ops)
		}
		page.Sections = append(page.Sections, sec)
	}
	return page
}

func accessWords(sub string) string {
	switch sub {
	case SubscriptionNone:
		return "open"
	case "not_subscribed":
		return "subscription needed"
	}
	return "subscription " + sub
}

func accessHowTo(e CatalogEntry, tenant, adminURL string) string {
	switch e.Subscription {
	case SubscriptionNone:
		return "no subscription is needed; call it with your tenant's credentials."
	case callstore.SubscriptionApproved:
		return "your subscription is approved; call it with your tenant's credentials."
	case callstore.SubscriptionPending:
		return "your subscription awaits an admin's approval (relia api approve); until then calls get 403 subscription_pending."
	}
	return fmt.Sprintf("request a subscription with `relia api subscribe --admin %s --tenant %s --api %s`; an admin approves it with `relia api approve`.", adminURL, tenant, e.Name)
}

func stateStatus(e CatalogEntry) string {
	switch e.State {
	case StateRetired:
		return report.StatusFail
	case StateDeprecated:
		return report.StatusWarn
	}
	return ""
}

// SubscriptionRequest is the body of POST /subscriptions and of the
// approve and revoke actions.
type SubscriptionRequest struct {
	Tenant string `json:"tenant"`
	API    string `json:"api"`
	Note   string `json:"note,omitempty"`
}

// ActorHeader names who makes a change through the admin API, for the
// audit log; `relia api` sends the user's name (--as).
const ActorHeader = "X-Relia-Actor"

// Handler serves API management on the gateway's admin API:
//
//	GET  /apis                         the APIs and their states (JSON)
//	GET  /catalog?tenant=T             tenant T's catalog (JSON)
//	GET  /portal?tenant=T              tenant T's developer portal (HTML)
//	GET  /subscriptions                every subscription
//	POST /subscriptions                request one: {"tenant", "api", "note"}
//	POST /subscriptions/approve        approve one: {"tenant", "api", "note"}
//	POST /subscriptions/revoke         revoke one
//
// adminURL is the admin API's own address, for the portal's
// instructions.
func (m *Manager) Handler(adminURL string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /apis", func(w http.ResponseWriter, r *http.Request) {
		st := m.st.Load()
		type apiJSON struct {
			Name    string   `json:"name"`
			Version string   `json:"version"`
			State   State    `json:"state"`
			Owner   string   `json:"owner,omitempty"`
			Routes  []string `json:"routes"`
			Access  string   `json:"subscription"`
		}
		out := []apiJSON{}
		for _, n := range st.order {
			a := st.apis[n].api
			out = append(out, apiJSON{n, a.Spec.Version, a.Spec.State, a.Spec.Owner, a.Spec.Routes, a.Spec.Access.Subscription})
		}
		writeJSON(w, http.StatusOK, map[string]any{"apis": out})
	})
	mux.HandleFunc("GET /catalog", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, m.Catalog(r.URL.Query().Get("tenant")))
	})
	mux.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := m.Portal(r.URL.Query().Get("tenant"), adminURL).WriteHTML(w); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	mux.HandleFunc("GET /subscriptions", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"subscriptions": m.Subscriptions()})
	})
	change := func(f func(*http.Request, SubscriptionRequest, string) (callstore.Subscription, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req SubscriptionRequest
			dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || req.Tenant == "" || req.API == "" {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a JSON body {\"tenant\": ..., \"api\": ..., \"note\": ...}", "reason": "bad_request"})
				return
			}
			actor := r.Header.Get(ActorHeader)
			if actor == "" {
				actor = "admin-api"
			}
			sub, err := f(r, req, actor)
			switch {
			case errors.Is(err, ErrUnknownAPI), errors.Is(err, ErrNoSubscription), errors.Is(err, ErrNotVisible):
				writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error(), "reason": "not_found"})
			case err != nil:
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error(), "reason": "store_error"})
			default:
				writeJSON(w, http.StatusOK, sub)
			}
		}
	}
	mux.HandleFunc("POST /subscriptions", change(func(r *http.Request, req SubscriptionRequest, actor string) (callstore.Subscription, error) {
		if actor == "admin-api" {
			actor = req.Tenant
		}
		return m.Subscribe(r.Context(), req.Tenant, req.API, actor, req.Note)
	}))
	mux.HandleFunc("POST /subscriptions/approve", change(func(r *http.Request, req SubscriptionRequest, actor string) (callstore.Subscription, error) {
		return m.Approve(r.Context(), req.Tenant, req.API, actor, req.Note)
	}))
	mux.HandleFunc("POST /subscriptions/revoke", change(func(r *http.Request, req SubscriptionRequest, actor string) (callstore.Subscription, error) {
		return m.Revoke(r.Context(), req.Tenant, req.API, actor, req.Note)
	}))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
