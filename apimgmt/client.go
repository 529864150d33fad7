package apimgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/relia-dev/relia/callstore"
)

// Client drives API management through a gateway's admin API, for
// `relia api`.
type Client struct {
	base  string
	hc    *http.Client
	actor string
}

// NewClient returns a client of the admin API at base; actor is who the
// audit log says made the changes. Nil hc is http.DefaultClient.
func NewClient(base, actor string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), hc: hc, actor: actor}
}

// Catalog asks for tenant's catalog.
func (c *Client) Catalog(ctx context.Context, tenant string) (Catalog, error) {
	var cat Catalog
	_, err := c.do(ctx, http.MethodGet, "/catalog?tenant="+url.QueryEscape(tenant), nil, &cat)
	return cat, err
}

// Portal fetches tenant's developer portal page.
func (c *Client) Portal(ctx context.Context, tenant string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, "/portal?tenant="+url.QueryEscape(tenant), nil, nil)
}

// Subscriptions lists every subscription.
func (c *Client) Subscriptions(ctx context.Context) ([]callstore.Subscription, error) {
	var out struct {
		Subscriptions []callstore.Subscription `json:"subscriptions"`
	}
	_, err := c.do(ctx, http.MethodGet, "/subscriptions", nil, &out)
	return out.Subscriptions, err
}

// Change requests ("subscribe"), approves or revokes a subscription.
func (c *Client) Change(ctx context.Context, verb string, req SubscriptionRequest) (callstore.Subscription, error) {
	path := "/subscriptions"
	switch verb {
	case "subscribe":
	case "approve", "revoke":
		path += "/" + verb
	default:
		return callstore.Subscription{}, fmt.Errorf("unknown change %q", verb)
	}
	var sub callstore.Subscription
	_, err := c.do(ctx, http.MethodPost, path, req, &sub)
	return sub, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.actor != "" {
		req.Header.Set(ActorHeader, c.actor)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Reason string }
		json.Unmarshal(data, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &callstore.StatusError{Status: resp.StatusCode, Reason: e.Reason, Msg: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return nil, fmt.Errorf("reading %s%s: %w", c.base, path, err)
		}
	}
	return data, nil
}
