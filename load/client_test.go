package load

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func echoHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Auth", r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write(append([]byte("echo:"), body...))
	})
}

func sendOne(t *testing.T, opts ClientOptions, url string) (wireReply, error) {
	t.Helper()
	tr, err := newTransport(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	var rep wireReply
	err = tr.session().do(&wireRequest{
		method:  "POST",
		url:     []byte(url),
		headers: []headerPair{{[]byte("Authorization"), []byte("Bearer x")}},
		body:    []byte("hello"),
	}, true, &rep)
	return rep, err
}

func TestClientSpeaksEveryVersion(t *testing.T) {
	h1 := httptest.NewServer(echoHandler(t))
	defer h1.Close()

	h2c := httptest.NewUnstartedServer(echoHandler(t))
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetHTTP1(true)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	defer h2c.Close()

	tlsSrv := httptest.NewUnstartedServer(echoHandler(t))
	tlsSrv.EnableHTTP2 = true
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the untrusted-certificate case logs a handshake error
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name  string
		opts  ClientOptions
		url   string
		proto string
	}{
		{"http/1.1", ClientOptions{Version: HTTP1, Timeout: 5 * time.Second}, h1.URL, "HTTP/1.1"},
		{"h2c", ClientOptions{Version: H2C, Timeout: 5 * time.Second}, h2c.URL, "HTTP/2.0"},
		{"h2 with ca file", ClientOptions{Version: HTTP2, Timeout: 5 * time.Second, CAFile: caFile}, tlsSrv.URL, "HTTP/2.0"},
		{"h2 insecure", ClientOptions{Version: HTTP2, Timeout: 5 * time.Second, Insecure: true}, tlsSrv.URL, "HTTP/2.0"},
		{"https/1.1 with ca file", ClientOptions{Version: HTTP1, Timeout: 5 * time.Second, CAFile: caFile}, tlsSrv.URL, "HTTP/1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := sendOne(t, tt.opts, tt.url+"/pay")
			if err != nil {
				t.Fatal(err)
			}
			if rep.status != http.StatusCreated || string(rep.body) != "echo:hello" {
				t.Fatalf("status %d body %q", rep.status, rep.body)
			}
			if rep.bytesIn < int64(len("echo:hello")) || rep.bytesOut < int64(len("hello")) {
				t.Fatalf("bytes in %d out %d", rep.bytesIn, rep.bytesOut)
			}
		})
	}
	// Without the CA the TLS server's certificate is not trusted.
	if _, err := sendOne(t, ClientOptions{Version: HTTP2, Timeout: 5 * time.Second}, tlsSrv.URL); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

func TestClientFailures(t *testing.T) {
	// A port that was just closed refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String()
	ln.Close()

	// A server that never answers.
	hang := make(chan struct{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer stall.Close()
	defer close(hang)

	for _, v := range []HTTPVersion{HTTP1, H2C} {
		opts := ClientOptions{Version: v, Timeout: 50 * time.Millisecond}
		if _, err := sendOne(t, opts, refused); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: refused port gave %v", v, err)
		}
		if v == HTTP1 {
			if _, err := sendOne(t, opts, stall.URL); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("%s: stalled server gave %v, want a deadline error", v, err)
			}
		}
	}
}

func TestClientOptionErrors(t *testing.T) {
	for name, o := range map[string]ClientOptions{
		"no timeout":  {Version: HTTP1},
		"bad version": {Version: "3", Timeout: time.Second},
		"missing ca":  {Timeout: time.Second, CAFile: "/nonexistent/ca.pem"},
	} {
		if _, err := newTransport(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	notPEM := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(notPEM, []byte("hello"), 0o600)
	if _, err := newTransport(ClientOptions{Timeout: time.Second, CAFile: notPEM}); err == nil || !strings.Contains(err.Error(), "no PEM") {
		t.Errorf("non-PEM CA file: %v", err)
	}
}
