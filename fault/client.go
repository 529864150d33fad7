package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/relia-dev/relia/clock"
)

// ToxicRequest asks for a toxic; zero fields take Toxiproxy's defaults
// (stream downstream, toxicity 1, name type_stream).
type ToxicRequest struct {
	Name       string         `json:"name,omitempty"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream,omitempty"`
	Toxicity   *float64       `json:"toxicity,omitempty"`
	Attributes map[string]any `json:"attributes,omitempty"`
	// LeaseTTL is the toxic's lease as a Go duration ("30s"). Client asks
	// for DefaultLeaseTTL when it is empty, so a toxic relia adds never
	// outlives its runner by more than that; NoLease asks for none.
	LeaseTTL string `json:"lease_ttl,omitempty"`
}

// Client drives a fault server's control API: relia fault's subcommands
// and a runner that must keep its faults' leases alive use it.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// NewClient returns a client of the server at base (http://host:port);
// token may be empty; hc nil means a client with a 30 s timeout.
func NewClient(base, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fault server address %q must be an http(s) URL", base)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(base, "/"), token: token, hc: hc}, nil
}

// do sends a request and decodes a JSON answer into out; an answer other
// than want is returned as the server's *APIError.
func (c *Client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "relia-fault-client")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		ae := &APIError{}
		if json.Unmarshal(data, ae) != nil || ae.Message == "" {
			ae = &APIError{Message: strings.TrimSpace(string(data)), Status: resp.StatusCode}
		}
		ae.Status = resp.StatusCode
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}

func esc(s string) string { return url.PathEscape(s) }

// Proxies lists the server's proxies, sorted by name.
func (c *Client) Proxies(ctx context.Context) ([]ProxyInfo, error) {
	var m map[string]ProxyInfo
	if err := c.do(ctx, "GET", "/proxies", nil, http.StatusOK, &m); err != nil {
		return nil, err
	}
	out := make([]ProxyInfo, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CreateProxy creates a proxy.
func (c *Client) CreateProxy(ctx context.Context, cfg ProxyConfig) (ProxyInfo, error) {
	var p ProxyInfo
	err := c.do(ctx, "POST", "/proxies", cfg, http.StatusCreated, &p)
	return p, err
}

// DeleteProxy deletes a proxy and ends its toxics.
func (c *Client) DeleteProxy(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/proxies/"+esc(name), nil, http.StatusNoContent, nil)
}

// AddToxic adds a toxic to a proxy, with a lease of DefaultLeaseTTL unless
// r asks for another (or for NoLease).
func (c *Client) AddToxic(ctx context.Context, proxy string, r ToxicRequest) (Toxic, error) {
	if r.LeaseTTL == "" {
		r.LeaseTTL = DefaultLeaseTTL.String()
	}
	var t Toxic
	err := c.do(ctx, "POST", "/proxies/"+esc(proxy)+"/toxics", r, http.StatusOK, &t)
	return t, err
}

// RemoveToxic removes a toxic.
func (c *Client) RemoveToxic(ctx context.Context, proxy, name string) error {
	return c.do(ctx, "DELETE", "/proxies/"+esc(proxy)+"/toxics/"+esc(name), nil, http.StatusNoContent, nil)
}

// RenewToxic renews a toxic's lease by ttl (0: by its own TTL).
func (c *Client) RenewToxic(ctx context.Context, proxy, name string, ttl time.Duration) (Toxic, error) {
	var in any
	if ttl > 0 {
		in = map[string]string{"lease_ttl": ttl.String()}
	}
	var t Toxic
	err := c.do(ctx, "POST", "/proxies/"+esc(proxy)+"/toxics/"+esc(name)+"/renew", in, http.StatusOK, &t)
	return t, err
}

// Status returns the server's seed, version and launched processes.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, "GET", "/relia/status", nil, http.StatusOK, &st)
	return st, err
}

// Reset removes every toxic and re-enables every proxy.
func (c *Client) Reset(ctx context.Context) error {
	return c.do(ctx, "POST", "/reset", nil, http.StatusNoContent, nil)
}

// ProcessFaults lists the server's active process faults.
func (c *Client) ProcessFaults(ctx context.Context) ([]ProcessFaultInfo, error) {
	var out []ProcessFaultInfo
	err := c.do(ctx, "GET", "/relia/process-faults", nil, http.StatusOK, &out)
	return out, err
}

// StartProcessFault starts a process fault on the server's machine; f.TTL
// 0 takes the server's default lease (process faults always have one).
func (c *Client) StartProcessFault(ctx context.Context, f ProcessFault) (ProcessFaultInfo, error) {
	in := struct {
		ProcessFault
		LeaseTTL string `json:"lease_ttl,omitempty"`
	}{ProcessFault: f}
	if f.TTL > 0 {
		in.LeaseTTL = f.TTL.String()
	}
	var out ProcessFaultInfo
	err := c.do(ctx, "POST", "/relia/process-faults", in, http.StatusOK, &out)
	return out, err
}

// RenewProcessFault renews a process fault's lease by ttl (0: its own).
func (c *Client) RenewProcessFault(ctx context.Context, name string, ttl time.Duration) (ProcessFaultInfo, error) {
	var in any
	if ttl > 0 {
		in = map[string]string{"lease_ttl": ttl.String()}
	}
	var out ProcessFaultInfo
	err := c.do(ctx, "POST", "/relia/process-faults/"+esc(name)+"/renew", in, http.StatusOK, &out)
	return out, err
}

// StopProcessFault ends a process fault now.
func (c *Client) StopProcessFault(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/relia/process-faults/"+esc(name), nil, http.StatusNoContent, nil)
}

// Hold renews a fault's lease every interval until ctx ends, so the fault
// lasts exactly as long as its holder: when the holder dies, even by
// SIGKILL, the renewals stop and the fault ends by itself within its TTL.
// renew is one fault's renewal, such as
//
//	func(ctx context.Context) error { _, err := c.RenewToxic(ctx, "db", "latency_downstream", 0); return err }
//
// and every should be well below the lease's TTL (a third leaves room for
// two failed renewals). A renewal the server refuses (the fault is gone)
// ends Hold with that error; one that does not reach the server is
// tried again at the next tick, since the lease may still be alive.
// Otherwise Hold returns ctx's error. clk nil means the real clock.
func Hold(ctx context.Context, clk clock.Clock, every time.Duration, renew func(context.Context) error) error {
	if every <= 0 {
		return fmt.Errorf("holding a fault: interval must be positive, got %v", every)
	}
	clk = clock.OrReal(clk)
	for {
		if err := clock.Sleep(ctx, clk, every); err != nil {
			return err
		}
		err := renew(ctx)
		var ae *APIError
		if errors.As(err, &ae) {
			return fmt.Errorf("renewing a held fault: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}
