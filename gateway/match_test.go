package gateway

import (
	"strings"
	"testing"
)

type mapHeaders map[string]string

func (m mapHeaders) Peek(k string) []byte {
	v, ok := m[k]
	if !ok {
		return nil
	}
	return []byte(v)
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		m                  Match
		host, method, path string
		hdr                mapHeaders
		want               bool
	}{
		{"empty matches all", Match{}, "x", "GET", "/anything", nil, true},
		{"exact", Match{Path: &PathMatch{Exact: "/a"}}, "x", "GET", "/a", nil, true},
		{"exact not prefix", Match{Path: &PathMatch{Exact: "/a"}}, "x", "GET", "/a/b", nil, false},
		{"prefix itself", Match{Path: &PathMatch{Prefix: "/api"}}, "x", "GET", "/api", nil, true},
		{"prefix child", Match{Path: &PathMatch{Prefix: "/api/"}}, "x", "GET", "/api/x", nil, true},
		{"prefix boundary", Match{Path: &PathMatch{Prefix: "/api"}}, "x", "GET", "/apis", nil, false},
		{"root prefix", Match{Path: &PathMatch{Prefix: "/"}}, "x", "GET", "/z", nil, true},
		{"regex anchored", Match{Path: &PathMatch{Regex: "/v[0-9]+/.*"}}, "x", "GET", "/v2/items", nil, true},
		{"regex not partial", Match{Path: &PathMatch{Regex: "/v[0-9]+"}}, "x", "GET", "/v2/items", nil, false},
		{"host with port", Match{Hosts: []string{"api.example.com"}}, "API.example.com:8080", "GET", "/", nil, true},
		{"wildcard host", Match{Hosts: []string{"*.example.com"}}, "a.b.example.com", "GET", "/", nil, true},
		{"wildcard not apex", Match{Hosts: []string{"*.example.com"}}, "example.com", "GET", "/", nil, false},
		{"ipv6 host", Match{Hosts: []string{"[::1]"}}, "[::1]", "GET", "/", nil, true},
		{"method", Match{Methods: []string{"POST"}}, "x", "GET", "/", nil, false},
		{"header present", Match{Headers: map[string]string{"X-A": "*"}}, "x", "GET", "/", mapHeaders{"X-A": ""}, true},
		{"header value", Match{Headers: map[string]string{"X-A": "1"}}, "x", "GET", "/", mapHeaders{"X-A": "2"}, false},
		{"header absent", Match{Headers: map[string]string{"X-A": "*"}}, "x", "GET", "/", mapHeaders{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compileMatch(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if tc.hdr == nil {
				tc.hdr = mapHeaders{}
			}
			if got := c.match([]byte(tc.host), []byte(tc.method), []byte(tc.path), tc.hdr); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRewritePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		prefix, rewrite, path, want string
	}{
		{"/api", "/", "/api/users", "/users"},
		{"/api", "/", "/api", "/"},
		{"/api", "/v2", "/api/users", "/v2/users"},
		{"/api/", "/v2/", "/api/users", "/v2/users"},
		{"/", "/base", "/x", "/base/x"},
	}
	for _, tc := range tests {
		c, _ := compileMatch(Match{Path: &PathMatch{Prefix: tc.prefix}})
		r := &route{match: c, cfg: Route{Rewrite: &Rewrite{Prefix: tc.rewrite}}}
		if got := string(r.rewritePath(nil, []byte(tc.path))); got != tc.want {
			t.Errorf("prefix %s -> %s: %s became %s, want %s", tc.prefix, tc.rewrite, tc.path, got, tc.want)
		}
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("*.example.com", "/api", "/v[0-9]+", "a.example.com:80", "GET", "/api/x")
	f.Add("", "/", "", "[::1]:1", "POST", "")
	f.Fuzz(func(t *testing.T, host, prefix, re, reqHost, method, path string) {
		m := Match{Hosts: []string{host}, Path: &PathMatch{Prefix: prefix}}
		if host == "" || strings.Count(host, "*") > 0 && !strings.HasPrefix(host, "*.") {
			m.Hosts = nil
		}
		if !strings.HasPrefix(prefix, "/") {
			m.Path = &PathMatch{Regex: re}
		}
		c, err := compileMatch(m)
		if err != nil {
			return
		}
		r := &route{match: c, cfg: Route{Rewrite: &Rewrite{Prefix: "/r"}}}
		if c.match([]byte(reqHost), []byte(method), []byte(path), mapHeaders{}) && c.prefix != "" {
			if out := r.rewritePath(nil, []byte(path)); len(out) == 0 || out[0] != '/' {
				t.Errorf("rewrite of %q gave %q", path, out)
			}
		}
	})
}
