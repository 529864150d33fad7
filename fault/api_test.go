package fault

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func apiDo(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestFaultAPIToxiproxyCompatible is not parallel: a disabled proxy listens
// again on the port it had, as Toxiproxy's do, and a parallel test binding
// port 0 could take that port meanwhile.
func TestFaultAPIToxiproxyCompatible(t *testing.T) {
	s, _, _ := newTestServer(t, 3)
	up := startUpstream(t, echo)
	h := s.Handler(HandlerOptions{})
	// The steps run in order against one server; each names the status and
	// a piece of the body Toxiproxy gives for the same request.
	steps := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/proxies", "", 200, `{}`},
		{"POST", "/proxies", `{"name":"db","listen":"127.0.0.1:0","upstream":"` + up + `"}`, 201, `"name":"db"`},
		{"POST", "/proxies", `{"name":"db","listen":"127.0.0.1:0","upstream":"` + up + `"}`, 409, `{"error":"proxy already exists: \"db\"","status":409}`},
		{"POST", "/proxies", `{"listen":"127.0.0.1:0","upstream":"x"}`, 400, `{"error":"missing required field: name","status":400}`},
		{"POST", "/proxies", `{"name":"x","listen":"127.0.0.1:0","upstream":"nowhere"}`, 400, `upstream \"nowhere\" must be host:port`},
		{"POST", "/proxies", `{"name":"x","listen":"127.0.0.1","upstream":"127.0.0.1:1"}`, 400, `listen \"127.0.0.1\" must be host:port`},
		{"POST", "/proxies", `{"name":"x","listen":"127.0.0.1:99999","upstream":"127.0.0.1:1"}`, 400, `listen \"127.0.0.1:99999\"`},
		{"POST", "/proxies", `{"name":"x","listen":"127.0.0.1:0"}`, 400, `missing required field: upstream`},
		{"POST", "/proxies", `{"name":`, 400, `"error":"bad request body: proxy: not valid JSON: it ends early"`},
		{"POST", "/proxies", `{"name":"x","listen":"` + up + `","upstream":"127.0.0.1:1"}`, 409, `"error":"listen address in use: ` + up + ` (proxy x)","status":409`},
		{"POST", "/proxies", `{"name":"x","mode":"udp","upstream":"127.0.0.1:1"}`, 400, `mode must be tcp or http, got \"udp\"`},
		{"GET", "/proxies/db", "", 200, `"enabled":true,"toxics":[]`},
		{"GET", "/proxies/nope", "", 404, `{"error":"proxy not found: \"nope\"","status":404}`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","attributes":{"latency":100,"jitter":10}}`, 200, `"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":100,"jitter":10}`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","attributes":{"latency":5}}`, 409, `{"error":"toxic already exists: \"latency_downstream\" on proxy \"db\"","status":409}`},
		{"POST", "/proxies/db/toxics", `{"type":"latncy"}`, 400, `invalid toxic type: \"latncy\"`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","stream":"sideways"}`, 400, `stream was invalid`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","toxicity":1.5}`, 400, `toxicity must be within [0, 1], got 1.5`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","toxicity":-0.1}`, 400, `toxicity must be within [0, 1]`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"latency":-1}}`, 400, `latency must not be negative, got -1`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"bandwidth","attributes":{"rate":-5}}`, 400, `rate must not be negative`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"latency":90000000000}}`, 400, `latency must be at most 86400000 ms (a day)`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"slicer","attributes":{"average_size":10,"delay":-1}}`, 400, `delay must not be negative`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"timeout","attributes":{"timeout":"soon"}}`, 400, `toxic \"t2\": attribute \"timeout\": want a whole number of milliseconds, got \"soon\"`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"latency":1.5}}`, 400, `toxic \"t2\": attribute \"latency\": want a whole number of milliseconds, got 1.5`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"latensy":1}}`, 400, `toxic \"t2\": unknown attribute \"latensy\" (known: latency, jitter, distribution, samples)`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","lease_ttl":"-3s"}`, 400, `lease_ttl must be within`},
		{"POST", "/proxies/db/toxics", `not json`, 400, `bad request body`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"chunk_loss","attributes":{"rate":2}}`, 400, `rate must be within [0, 1]`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"distribution":"empirical"}}`, 400, `needs 1 to 100000 samples`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"distribution":"empirical","samples":[1,-2]}}`, 400, `samples must be within`},
		{"POST", "/proxies/db/toxics", `{"name":"t2","type":"latency","attributes":{"distribution":"zipf"}}`, 400, `distribution must be`},
		{"POST", "/proxies/nope/toxics", `{"type":"latency"}`, 404, `proxy not found`},
		{"POST", "/proxies/db/toxics", `{"name":"cut","type":"limit_data","stream":"upstream","toxicity":0.25,"lease_ttl":"30s","attributes":{"bytes":10}}`, 200, `"lease":{"ttl":"30s"`},
		{"GET", "/proxies/db/toxics", "", 200, `[{"name":"cut"`},
		{"GET", "/proxies/db/toxics/cut", "", 200, `"toxicity":0.25`},
		{"GET", "/proxies/db/toxics/nope", "", 404, `{"error":"toxic not found: \"nope\" on proxy \"db\"","status":404}`},
		{"POST", "/proxies/db/toxics/cut", `{"attributes":{"bytes":20}}`, 200, `"toxicity":0.25,"attributes":{"bytes":20}`},
		{"POST", "/proxies/db/toxics/cut", `{"toxicity":2}`, 400, `toxicity must be within`},
		{"POST", "/proxies/db/toxics/cut/renew", `{"lease_ttl":"90s"}`, 200, `"ttl":"1m30s"`},
		{"POST", "/proxies/db/toxics/cut/renew", ``, 200, `"ttl":"1m30s"`},
		{"POST", "/proxies/db/toxics/cut/renew", `{"lease_ttl":"forever"}`, 400, `lease_ttl`},
		{"DELETE", "/proxies/db/toxics/cut", "", 204, ``},
		{"DELETE", "/proxies/db/toxics/cut", "", 404, `toxic not found`},
		{"POST", "/proxies/db", `{"enabled":false}`, 200, `"enabled":false`},
		{"POST", "/reset", "", 204, ``},
		{"GET", "/proxies/db", "", 200, `"enabled":true,"toxics":[]`},
		{"POST", "/populate", `[{"name":"db","listen":"127.0.0.1:0","upstream":"` + up + `"},{"name":"web","listen":"127.0.0.1:0","upstream":"` + up + `"}]`, 201, `{"proxies":[{"name":"db"`},
		{"POST", "/populate", `[{"name":"ok","upstream":"127.0.0.1:1"},{"upstream":"127.0.0.1:1"}]`, 400, `"error":"missing required field: name at proxy 2","status":400,"proxies":[]`},
		{"POST", "/populate", `{"name":"db"}`, 400, `bad request body`},
		{"DELETE", "/proxies/web", "", 204, ``},
		{"DELETE", "/proxies/web", "", 404, `proxy not found`},
		{"GET", "/relia/status", "", 200, `"seed":3`},
		{"PUT", "/proxies", "", 405, ``},
	}
	for i, st := range steps {
		code, body := apiDo(t, h, st.method, st.path, st.body)
		if code != st.status || !strings.Contains(body, st.want) {
			t.Fatalf("step %d %s %s %s:\n got %d %s\nwant %d containing %s", i, st.method, st.path, st.body, code, body, st.status, st.want)
		}
		if code >= 400 {
			var e APIError
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Status != code || e.Message == "" {
				t.Fatalf("step %d: error body %q is not {error, status}", i, body)
			}
		}
	}
}

func TestFaultAPIRefusesBrowsersAndChecksToken(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServer(t, 1)
	tests := []struct {
		name, token, auth, ua string
		want                  int
	}{
		{"no token needed", "", "", "", 200},
		{"browser", "", "", "Mozilla/5.0", 403},
		{"token missing", "s3cret", "", "", 401},
		{"token wrong", "s3cret", "Bearer nope", "", 401},
		{"token right", "s3cret", "Bearer s3cret", "", 200},
	}
	for _, tt := range tests {
		req := httptest.NewRequest("GET", "/proxies", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		if tt.ua != "" {
			req.Header.Set("User-Agent", tt.ua)
		}
		rec := httptest.NewRecorder()
		s.Handler(HandlerOptions{Token: tt.token}).ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.want)
		}
	}
}

// checkDecodeError is what every API decoder promises: no panic, and any
// error is a 4xx APIError with a message.
func checkDecodeError(t *testing.T, err error) {
	if err == nil {
		return
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Message == "" {
		t.Fatalf("decoder error %v is not a 4xx APIError", err)
	}
}

func FuzzFaultDecodeToxic(f *testing.F) {
	for _, seed := range []string{
		`{"type":"latency","attributes":{"latency":100,"jitter":10}}`,
		`{"name":"x","type":"slicer","stream":"upstream","toxicity":0.5,"attributes":{"average_size":10,"size_variation":2,"delay":5}}`,
		`{"type":"bandwidth","attributes":{"rate":-1}}`,
		`{"type":"timeout","lease_ttl":"5s","attributes":{"timeout":0}}`,
		`{"type":"partition","attributes":null}`,
		`{"type":"chunk_loss","attributes":{"rate":0.5}}`,
		`{"type":"latency","attributes":{"distribution":"empirical","samples":[0.5,3,80]}}`,
		`{"type":"http","toxicity":0.0001,"attributes":{"methods":["POST"],"path":"/pay/**","abort_status":503,"retry_after":5}}`,
		`{"type":"http","attributes":{"headers":{"X-T":"a"},"delay":10,"truncate_body":3,"corrupt_rate":0.1,"set_headers":{"X-F":"1"}}}`,
		`{"type":"nope"}`, `{`, `[]`, `null`, ``,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		spec, err := decodeToxic(strings.NewReader(body))
		checkDecodeError(t, err)
		if err == nil {
			if spec.toxicity < 0 || spec.toxicity > 1 || spec.impl.validate() != nil {
				t.Fatalf("accepted an invalid toxic %q", body)
			}
			up, err := decodeUpdate(spec, strings.NewReader(body))
			checkDecodeError(t, err)
			if err == nil && up.impl.validate() != nil {
				t.Fatalf("update accepted invalid attributes %q", body)
			}
		}
	})
}

func FuzzFaultDecodeProxies(f *testing.F) {
	for _, seed := range []string{
		`{"name":"a","listen":"127.0.0.1:0","upstream":"127.0.0.1:1"}`,
		`[{"name":"a","upstream":"b","enabled":false}]`,
		`{"lease_ttl":"10s"}`, `{"lease_ttl":"-1s"}`, `{`, `""`, ``,
		`{"name":"f","type":"disk_fill","path":"/tmp/x","bytes":10,"lease_ttl":"5s"}`,
		`{"name":"k","type":"restart","launched":"svc"}`,
		`{"listen":"127.0.0.1:9","upstream":"db:5432","enabled":true}`, `{"upstream":"nope"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		_, err := decodeProxy(strings.NewReader(body))
		checkDecodeError(t, err)
		_, err = decodePopulate(strings.NewReader(body))
		checkDecodeError(t, err)
		_, err = decodeProcessFault(strings.NewReader(body))
		checkDecodeError(t, err)
		_, err = decodeProxyUpdate(strings.NewReader(body), ProxyInfo{Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2"})
		checkDecodeError(t, err)
		ttl, err := decodeRenew(io.NopCloser(strings.NewReader(body)))
		checkDecodeError(t, err)
		if err == nil && (ttl < 0 || ttl > MaxLeaseTTL) {
			t.Fatalf("renew accepted ttl %v", ttl)
		}
	})
}

// TestFaultAPITraps drives the control API over loopback HTTP with what a
// careless or hostile client sends: names that are paths or 100 KB long,
// misspelt fields, wrong types, more proxies than the server should hold,
// paths and methods no route serves. Each is refused with a 4xx whose
// JSON names what was wrong, and nothing is created.
func TestFaultAPITraps(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestServerWith(t, Options{MaxProxies: 2})
	up := startUpstream(t, echo)
	api := httptest.NewServer(s.Handler(HandlerOptions{}))
	defer api.Close()
	long := strings.Repeat("a", 100<<10)
	proxy := func(name, extra string) string {
		return `{"name":"` + name + `","listen":"127.0.0.1:0","upstream":"` + up + `"` + extra + `}`
	}
	steps := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/proxies", proxy("../../etc", ""), 400, `proxy name \"../../etc\" must start with a letter or digit and hold only letters, digits, '-', '_' and '.'`},
		{"POST", "/proxies", proxy("a/b", ""), 400, `must start with a letter or digit`},
		{"POST", "/proxies", proxy("..", ""), 400, `must start with a letter or digit`},
		{"POST", "/proxies", proxy(long, ""), 400, `is 102400 bytes long, at most 128`},
		{"POST", "/proxies", `{"name":"db","listen":"127.0.0.1:0","upstrem":"` + up + `"}`, 400,
			`bad request body: proxy: unknown field \"upstrem\" (known: name, listen, upstream, enabled, mode, max_triggered, toxics)`},
		{"POST", "/proxies", `{"name":"db","listen":8080,"upstream":"` + up + `"}`, 400, `proxy: field \"listen\": want a string, got 8080`},
		{"POST", "/proxies", proxy("db", `,"toxics":[{"type":"latency"}]`), 400, `proxy \"db\": a proxy is created without toxics; add them with POST /proxies/{proxy}/toxics`},
		{"GET", "/proxies", "", 200, `{}`},
		// What Toxiproxy's clients send on create: the proxy with no toxics.
		{"POST", "/proxies", proxy("db", `,"enabled":true,"toxics":null`), 201, `"name":"db"`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","attributes":{"latency":"100ms"}}`, 400,
			`toxic \"latency_downstream\": attribute \"latency\": want a whole number of milliseconds, got \"100ms\"`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","atributes":{"latency":100}}`, 400,
			`unknown field \"atributes\" (known: name, type, stream, toxicity, attributes, lease_ttl, lease)`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","toxicity":"half"}`, 400, `field \"toxicity\": want a number, got \"half\"`},
		{"POST", "/proxies/db/toxics", `{"type":"slicer","attributes":{"delay":[1]}}`, 400, `attribute \"delay\": want a whole number of microseconds, got [1]`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","attributes":{"samples":"1,2"}}`, 400, `attribute \"samples\": want a list of numbers of milliseconds, got \"1,2\"`},
		{"POST", "/proxies/db/toxics", `{"name":"../x","type":"latency"}`, 400, `toxic name \"../x\" must start with a letter or digit`},
		{"POST", "/proxies/db/toxics", `{"type":"latency"} {"type":"slicer"}`, 400, `more after the JSON value`},
		{"POST", "/proxies/db/toxics", ``, 400, `empty body, want a JSON object`},
		{"POST", "/proxies/db/toxics", `{"type":"latency","lease_ttl":"soon"}`, 400, `lease_ttl: want a duration such as \"30s\" or \"2m\", or \"none\", got \"soon\"`},
		{"POST", "/proxies/db/toxics", `{"name":"lat","type":"latency"}`, 200, `"name":"lat"`},
		{"POST", "/proxies/db/toxics/lat", `{"type":"slicer"}`, 400, `its type latency cannot change to \"slicer\"`},
		{"POST", "/proxies/db/toxics/lat", `{"attributes":{"jitter":"x"}}`, 400, `attribute \"jitter\": want a whole number of milliseconds, got \"x\"`},
		// A proxy sent back whole, as Toxiproxy's clients save it.
		{"POST", "/proxies/db", `{"name":"db","listen":"127.0.0.1:0","upstream":"` + up + `","enabled":false,"mode":"tcp","toxics":[{"name":"lat"}]}`, 200, `"enabled":false`},
		{"POST", "/proxies/db", `{"name":"other"}`, 400, `a proxy cannot be renamed`},
		{"POST", "/proxies/db", `{"mode":"http"}`, 400, `its mode tcp cannot change to \"http\"`},
		{"POST", "/proxies/db", `{"enabld":true}`, 400, `unknown field \"enabld\"`},
		{"GET", "/proxies/nope", "", 404, `proxy not found: \"nope\"`},
		{"GET", "/proxies/" + long, "", 404, `proxy not found: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"...(102400 bytes)`},
		{"DELETE", "/proxies/db/toxics/nope", "", 404, `toxic not found: \"nope\" on proxy \"db\"`},
		{"POST", "/proxies", proxy("web", ""), 201, `"name":"web"`},
		{"POST", "/proxies", proxy("third", ""), 409, `too many proxies: the server holds at most 2 (relia fault serve --max-proxies); delete one first`},
		{"POST", "/populate", `[` + proxy("db", "") + `,` + proxy("x1", "") + `]`, 409, `too many proxies`},
		{"POST", "/populate", `[` + proxy("db", `,"lease":1`) + `]`, 400, `unknown field \"lease\"`},
		{"GET", "/proxies/x1", "", 404, `proxy not found`},
		{"GET", "/nowhere", "", 404, `no such endpoint: GET /nowhere`},
		{"DELETE", "/reset", "", 405, `method not allowed: DELETE /reset takes POST`},
	}
	for i, st := range steps {
		req, err := http.NewRequest(st.method, api.URL+st.path, strings.NewReader(st.body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != st.status || !strings.Contains(body, st.want) {
			t.Fatalf("step %d %s %s:\n got %d %s\nwant %d containing %s", i, st.method, shorten(st.path), resp.StatusCode, shorten(body), st.status, st.want)
		}
		if resp.StatusCode >= 400 {
			var e APIError
			if err := json.Unmarshal(b, &e); err != nil || e.Status != resp.StatusCode || len(e.Message) > 1000 {
				t.Fatalf("step %d: error body %q is not a short {error, status}", i, shorten(body))
			}
		}
	}
}
