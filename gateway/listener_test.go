package gateway

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into the
// test's directory and returns their paths and a pool that trusts it.
func selfSigned(t *testing.T) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "relia gateway test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// tlsGateway starts a gateway whose only listener serves TLS, in front of
// be, and returns it with a client configuration that trusts it.
func tlsGateway(t *testing.T, be *backend) (*Gateway, *tls.Config) {
	certFile, keyFile, roots := selfSigned(t)
	g, _ := startGateway(t, fmt.Sprintf(`
  listeners: [{name: main, address: "127.0.0.1:0", tls: {certFile: %q, keyFile: %q}}]
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b, upgrades: [websocket]}]
`, certFile, keyFile, be.addr()), Options{})
	return g, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
}

func TestTLSListenerNegotiatesHTTP2AndHTTP1(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "b")
	g, tc := tlsGateway(t, be)
	url := "https://" + g.Addr("main") + "/x"
	for _, tt := range []struct {
		name      string
		h2        bool
		wantMajor int
	}{
		{"h2 by ALPN", true, 2},
		{"http/1.1", false, 1},
	} {
		tr := &http.Transport{TLSClientConfig: tc.Clone(), Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(!tt.h2)
		tr.Protocols.SetHTTP2(tt.h2)
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(url)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.ProtoMajor != tt.wantMajor || resp.StatusCode != 200 || string(body) != "b" || resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s: %s %d %q", tt.name, resp.Proto, resp.StatusCode, body)
		}
		if tt.h2 && resp.TLS.NegotiatedProtocol != "h2" {
			t.Errorf("%s: ALPN chose %q", tt.name, resp.TLS.NegotiatedProtocol)
		}
		if p := be.lastRequest().Header.Get("X-Forwarded-Proto"); p != "https" {
			t.Errorf("%s: upstream saw X-Forwarded-Proto %q, want https", tt.name, p)
		}
	}
}

// echoWebSocket makes be answer an Upgrade: websocket with 101 and echo
// every byte after it.
func echoWebSocket(be *backend) {
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Upgrade") != "websocket" {
			return false
		}
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return true
		}
		defer c.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(c, rw)
		return true
	})
}

func TestWebSocketThroughNetHTTPListeners(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "ws")
	echoWebSocket(be)
	tlsGW, tc := tlsGateway(t, be)
	h2cGW, _ := startGateway(t, fmt.Sprintf(`
  listeners: [{name: main, address: "127.0.0.1:0", h2c: true}]
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b, upgrades: [websocket]}]
`, be.addr()), Options{})
	for _, tt := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"tls", func() (net.Conn, error) {
			c := tc.Clone()
			c.NextProtos = []string{"http/1.1"}
			return tls.Dial("tcp", tlsGW.Addr("main"), c)
		}},
		{"h2c listener, HTTP/1.1", func() (net.Conn, error) { return net.Dial("tcp", h2cGW.Addr("main")) }},
	} {
		c, err := tt.dial()
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			c.Close()
			t.Fatalf("%s: upgrade: %v %v", tt.name, resp, err)
		}
		for _, msg := range []string{"ping frames", "and more"} {
			io.WriteString(c, msg)
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != msg {
				t.Errorf("%s: echo through the gateway: %q %v", tt.name, buf, err)
			}
		}
		c.Close()
	}
}

// TestStreamingIsNotBuffered has the upstream hold its second chunk back
// until the client has read the first: a gateway that buffered the
// response would never deliver the first, and the test would fail on its
// deadline rather than on a timing threshold.
func TestStreamingIsNotBuffered(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "sse")
	next := make(chan struct{}, 1)
	be.handle(func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return true
		case <-time.After(10 * time.Second):
		}
		fmt.Fprint(w, "data: second\n\n")
		return true
	})
	tlsGW, tc := tlsGateway(t, be)
	_, plainURL := startGateway(t, fmt.Sprintf(`
  upstreams: [{name: b, targets: [{address: %s}]}]
  routes: [{name: r, upstream: b}]
`, be.addr()), Options{})
	h2 := &http.Transport{TLSClientConfig: tc.Clone(), Protocols: new(http.Protocols)}
	h2.Protocols.SetHTTP2(true)
	for _, tt := range []struct {
		name, url string
		client    *http.Client
		wantMajor int
	}{
		{"HTTP/1.1 engine", plainURL + "/events", &http.Client{}, 1},
		{"TLS with h2, bridged", "https://" + tlsGW.Addr("main") + "/events", &http.Client{Transport: h2}, 2},
	} {
		resp, err := tt.client.Get(tt.url)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if resp.ProtoMajor != tt.wantMajor {
			t.Errorf("%s: %s", tt.name, resp.Proto)
		}
		br := bufio.NewReader(resp.Body)
		got := make(chan string, 1)
		go func() {
			line, _ := br.ReadString('\n')
			got <- line
		}()
		select {
		case line := <-got:
			if line != "data: first\n" {
				t.Errorf("%s: first line %q", tt.name, line)
			}
		case <-time.After(8 * time.Second):
			t.Fatalf("%s: the first event did not arrive while the upstream held the second back", tt.name)
		}
		next <- struct{}{}
		rest, _ := io.ReadAll(br)
		resp.Body.Close()
		if string(rest) != "\ndata: second\n\n" {
			t.Errorf("%s: rest of the stream %q", tt.name, rest)
		}
	}
}
