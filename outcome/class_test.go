package outcome

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/h1"
)

func TestClassNames(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for c := range NumClasses {
		name := c.String()
		if seen[name] || strings.HasPrefix(name, "class(") {
			t.Errorf("class %d has name %q (duplicate or missing)", c, name)
		}
		seen[name] = true
		got, err := ParseClass(name)
		if err != nil || got != c {
			t.Errorf("ParseClass(%q) = %v, %v; want %v", name, got, err, c)
		}
		if c.Failed() != (c != ClassOK) {
			t.Errorf("%s.Failed() = %v", c, c.Failed())
		}
		// k6's http_req_failed: neither a response that failed a check nor
		// an arrival that was never sent is a failed request.
		if want := c != ClassOK && c != ClassCheck && c != ClassDropped; c.RequestFailed() != want {
			t.Errorf("%s.RequestFailed() = %v", c, c.RequestFailed())
		}
	}
	for _, bad := range []string{"", "OK", "Timeout", "class(3)", "ok "} {
		if _, err := ParseClass(bad); err == nil {
			t.Errorf("ParseClass(%q) succeeded, want an error", bad)
		}
	}
	if got := NumClasses.String(); got != fmt.Sprintf("class(%d)", NumClasses) {
		t.Errorf("NumClasses.String() = %q", got)
	}
	if _, err := NumClasses.MarshalText(); err == nil {
		t.Error("MarshalText of an undefined class succeeded")
	}
}

// Real errors, made on loopback.

func refusedErr(t *testing.T) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("dialing a closed port succeeded")
	}
	return err
}

// garbageServer answers every request with reply, whatever was asked,
// and closes the connection.
func garbageServer(t *testing.T, reply string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString(reply)
		buf.Flush()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// hijackServer answers every request by taking over the connection and
// closing it, with linger 0 (a reset) or not (EOF before any response).
func hijackServer(t *testing.T, reset bool) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		if reset {
			conn.(*net.TCPConn).SetLinger(0)
		}
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv
}

func getErr(t *testing.T, ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Fatalf("GET %s succeeded", url)
	}
	return err
}

// noKeepAlive keeps each request on its own connection, so one test's
// broken connection is never reused by another.
func noKeepAlive(tlsConfig *tls.Config) *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: tlsConfig}}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hanging.Close)
	// The TLS servers log the handshakes the tests break on purpose.
	quiet := log.New(io.Discard, "", 0)
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = quiet
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	mtls := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	mtls.Config.ErrorLog = quiet
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	mtls.StartTLS()
	t.Cleanup(mtls.Close)

	tests := []struct {
		name string
		err  func(t *testing.T) error
		want Class
	}{
		{"nil", func(*testing.T) error { return nil }, ClassOK},
		{"dial a closed port", refusedErr, ClassRefused},
		{"server closes the connection", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(nil), hijackServer(t, false).URL)
		}, ClassReset},
		{"server resets the connection", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(nil), hijackServer(t, true).URL)
		}, ClassReset},
		{"context deadline", func(t *testing.T) error {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			return getErr(t, ctx, noKeepAlive(nil), hanging.URL)
		}, ClassTimeout},
		{"client timeout", func(t *testing.T) error {
			c := noKeepAlive(nil)
			c.Timeout = 50 * time.Millisecond
			return getErr(t, context.Background(), c, hanging.URL)
		}, ClassTimeout},
		{"context canceled", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return getErr(t, ctx, noKeepAlive(nil), hanging.URL)
		}, ClassCanceled},
		{"read deadline", func(t *testing.T) error {
			c, err := net.Dial("tcp", hanging.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(-time.Second))
			_, err = c.Read(make([]byte, 1))
			return err
		}, ClassTimeout},
		{"dns server unreachable", func(t *testing.T) error {
			r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return nil, refusedErr(t)
			}}
			_, err := r.LookupHost(context.Background(), "relia.invalid")
			return err
		}, ClassDNS},
		{"untrusted certificate", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(nil), tlsSrv.URL)
		}, ClassTLS},
		{"tls to a plain server", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(nil), strings.Replace(hanging.URL, "http:", "https:", 1))
		}, ClassTLS},
		{"peer requires a client certificate", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(&tls.Config{InsecureSkipVerify: true}), mtls.URL)
		}, ClassTLS},
		{"broken pipe", func(*testing.T) error {
			return &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
		}, ClassReset},
		{"unexpected EOF", func(*testing.T) error { return fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF) }, ClassReset},
		{"garbage instead of a response", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(nil), garbageServer(t, "SSH-2.0-OpenSSH_9.6\r\n\r\n"))
		}, ClassProtocol},
		{"malformed status code", func(t *testing.T) error {
			return getErr(t, context.Background(), noKeepAlive(nil), garbageServer(t, "HTTP/1.1 2x0 OK\r\n\r\n"))
		}, ClassProtocol},
		{"marked by a producer", func(*testing.T) error { return fmt.Errorf("%w: bad chunk size", ErrProtocol) }, ClassProtocol},
		{"malformed head from relia's codec", func(*testing.T) error {
			var resp h1.Response
			_, err := h1.ParseResponse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), h1.Limits{}, false, &resp)
			return fmt.Errorf("reading the response: %w", err)
		}, ClassProtocol},
		{"anything else", func(*testing.T) error { return errors.New("boom") }, ClassOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.err(t)
			if got := Classify(err); got != tt.want {
				t.Errorf("Classify(%v) = %s, want %s", err, got, tt.want)
			}
		})
	}
}

func TestClassifyResponse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status int
		err    error
		want   Class
	}{
		{200, nil, ClassOK},
		{404, nil, ClassOK},
		{429, nil, ClassStatus},
		{500, nil, ClassStatus},
		{503, nil, ClassStatus},
		{0, context.DeadlineExceeded, ClassTimeout},
		{200, io.ErrUnexpectedEOF, ClassReset}, // the body broke off after the status
	}
	for _, tt := range tests {
		if got := ClassifyResponse(tt.status, tt.err); got != tt.want {
			t.Errorf("ClassifyResponse(%d, %v) = %s, want %s", tt.status, tt.err, got, tt.want)
		}
	}
}

func TestSummaryCountsFailedRequestsAsK6(t *testing.T) {
	t.Parallel()
	var s Summary
	s.ByClass[ClassOK], s.ByClass[ClassCheck], s.ByClass[ClassDropped] = 6, 2, 5
	s.ByClass[ClassStatus], s.ByClass[ClassProtocol] = 1, 1
	s.Total = 15
	rate, ok := s.FailedRate()
	if s.Sent() != 10 || s.RequestsFailed() != 2 || !ok || rate != 0.2 {
		t.Errorf("sent %d, failed %d, rate %v %v: want 10 sent, 2 failed (status and protocol), 20%%", s.Sent(), s.RequestsFailed(), rate, ok)
	}
	if _, ok := (Summary{}).FailedRate(); ok {
		t.Error("FailedRate of nothing sent is ok")
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		9873538097 * time.Nanosecond: "9.87s",
		22001 * time.Millisecond:     "22s",
		12345 * time.Millisecond:     "12.3s",
		45678 * time.Microsecond:     "45.7ms",
		999600 * time.Microsecond:    "1s",
		999 * time.Millisecond:       "999ms",
		789 * time.Microsecond:       "789µs",
		1234 * time.Nanosecond:       "1.23µs",
		17 * time.Nanosecond:         "17ns",
		0:                            "0s",
		59990 * time.Millisecond:     "1m",
		60 * time.Second:             "1m",
		3605 * time.Second:           "1h0m5s",
		10 * time.Minute:             "10m",
		2 * time.Hour:                "2h",
		125400 * time.Millisecond:    "2m5s",
		-1500 * time.Millisecond:     "-1.5s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%d) = %q, want %q", int64(d), got, want)
		}
	}
}
