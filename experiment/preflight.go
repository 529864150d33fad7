package experiment

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// DefaultPreflightTimeout bounds each connection Preflight tries.
const DefaultPreflightTimeout = 2 * time.Second

// Preflight checks, before any traffic, that what the plan reaches but
// does not start itself answers: the target URL and the external fault
// server each accept a TCP connection. Services the run starts are
// checked by their health checks once started. timeout bounds each
// connection attempt; 0 means DefaultPreflightTimeout. Every problem is
// reported.
func Preflight(ctx context.Context, p *Plan, timeout time.Duration) error {
	if timeout < 0 {
		return fmt.Errorf("preflight: timeout %v is negative", timeout)
	}
	if timeout == 0 {
		timeout = DefaultPreflightTimeout
	}
	var errs []error
	check := func(what, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", what, raw, err))
			return
		}
		host := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			host = net.JoinHostPort(u.Hostname(), port)
		}
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(dctx, "tcp", host)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s is unreachable: %w", what, raw, err))
			return
		}
		conn.Close()
	}
	if p.Target.URL != "" && !p.startsTarget() {
		check("target", p.Target.URL)
	}
	if p.FaultServer != "" {
		check("fault server", p.FaultServer)
	}
	return errors.Join(errs...)
}

// startsTarget reports whether the run starts the services the target
// URL points at, so that it cannot answer before the run.
func (p *Plan) startsTarget() bool {
	if len(p.Target.Services) == 0 {
		return false
	}
	u, err := url.Parse(p.Target.URL)
	if err != nil {
		return false
	}
	for _, s := range p.Target.Services {
		if s.Shop == nil && u.Port() != "" {
			for i := range s.Replicas {
				if fmt.Sprint(s.Port+i) == u.Port() {
					return true
				}
			}
		}
	}
	return false
}
