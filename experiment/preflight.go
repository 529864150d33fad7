package experiment

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// DefaultPreflightTimeout bounds each connection Preflight tries.
const DefaultPreflightTimeout = 2 * time.Second

// Preflight checks, before any traffic, that what the plan reaches but
// does not start itself answers: the target URL and the external fault
// server each accept a TCP connection. When the target URL is a fault
// proxy of the plan (which the run starts), the proxy's upstream is
// checked instead. Services the run starts are checked by their health
// checks once started. timeout bounds each connection attempt; 0 means
// DefaultPreflightTimeout. Every problem is reported.
func Preflight(ctx context.Context, p *Plan, timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("preflight: timeout %v is negative", timeout)
	}
	if timeout == 0 {
		timeout = DefaultPreflightTimeout
	}
	var errs []error
	dial := func(what, shown, hostport string) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(dctx, "tcp", hostport)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s is unreachable: %w", what, shown, err))
			return
		}
		conn.Close()
	}
	check := func(what, raw string) {
		host, err := urlHostPort(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", what, raw, err))
			return
		}
		if p.startsAddr(host) {
			return
		}
		for _, px := range p.Proxies {
			if px.Listen == host {
				if !p.startsAddr(px.Upstream) {
					dial(fmt.Sprintf("%s %s goes through proxy %s, whose upstream", what, raw, px.Name), px.Upstream, px.Upstream)
				}
				return
			}
		}
		dial(what, raw, host)
	}
	if p.Target.URL != "" {
		check("target", p.Target.URL)
	}
	if p.FaultServer != "" {
		check("fault server", p.FaultServer)
	}
	return errors.Join(errs...)
}

// urlHostPort returns the host:port an http(s) URL connects to.
func urlHostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if u.Port() != "" {
		return u.Host, nil
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// startsAddr reports whether the run starts the service listening on
// hostport: a replica of a command service on the loopback interface.
func (p *Plan) startsAddr(hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return false
	}
	for _, s := range p.Target.Services {
		if s.Shop != nil {
			continue
		}
		for i := range s.Replicas {
			if strconv.Itoa(s.Port+i) == port {
				return true
			}
		}
	}
	return false
}
