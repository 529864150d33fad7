package gateway

import (
	"io"
	"net"
	"strings"
	"testing"
)

// A second gateway on a port the first holds fails to start with an error
// that names the config field, its place in the file and the port, and
// leaves nothing listening.
func TestPortClashNamesTheFieldAndPort(t *testing.T) {
	t.Parallel()
	be := newBackend(t, "svc")
	spec := `  upstreams: [{name: svc, targets: [{address: "` + be.addr() + `"}]}]
  routes: [{name: r, upstream: svc}]
`
	first, _ := startGateway(t, spec, Options{})
	_, adminPort, _ := net.SplitHostPort(first.AdminAddr())
	_, publicPort, _ := net.SplitHostPort(first.Addr("main"))
	for _, tc := range []struct {
		name, head, want string
	}{
		{"admin", "  listeners: [{name: main, address: \"127.0.0.1:0\"}]\n  admin: {address: \"127.0.0.1:" + adminPort + "\"}\n",
			"second.yaml:5:20: spec.admin.address: cannot listen on 127.0.0.1:" + adminPort + ": port " + adminPort + " is in use by another gateway or program; give spec.admin.address a free port (port 0 picks one)"},
		{"listener", "  listeners: [{name: main, address: \"127.0.0.1:" + publicPort + "\"}]\n  admin: {address: \"127.0.0.1:0\"}\n",
			"second.yaml:4:37: spec.listeners[0].address: cannot listen on 127.0.0.1:" + publicPort + ": port " + publicPort + " is in use"},
	} {
		cfg, err := Parse("second.yaml", []byte("kind: Gateway\nversion: relia/v1\nspec:\n"+tc.head+spec))
		if err != nil {
			t.Fatal(err)
		}
		g, err := New(cfg, Options{AccessLog: io.Discard, Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		err = g.Start()
		if err == nil {
			g.Shutdown(canceled())
			t.Fatalf("%s: a second gateway started on a port the first holds", tc.name)
		}
		if !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %q, want it to start with %q", tc.name, err, tc.want)
		}
		g.Shutdown(canceled())
	}
}

// When the admin address was left out, the error says the port is the
// default and how to turn the admin API off. (The test holds a port of its
// own rather than the default, which other programs may use.)
func TestPortClashOnTheDefaultSaysSo(t *testing.T) {
	t.Parallel()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	_, err = listen(&Config{}, "spec.admin.address", held.Addr().String(), defaultAdminNote)
	want := "spec.admin.address: cannot listen on " + held.Addr().String() + ` (the default when spec.admin.address is left out; "off" turns the admin API off): port `
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want it to start with %q", err, want)
	}
}
