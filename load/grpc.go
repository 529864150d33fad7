package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/relia-dev/relia/grpcload"
	"github.com/relia-dev/relia/outcome"
)

// gRPC requests. A request whose URL is grpc://host:port/package.Service/
// Method (grpcs:// for TLS) is a gRPC call of that method: its body is the
// request message in protobuf JSON (a template), its headers are the
// call's metadata, the scenario's timeout is each call's deadline, and
// messages: lists the stream of a client-streaming or bidirectional call.
// The methods are found in the scenario's proto files, or asked of the
// server through reflection before the load starts (Preflight, or Run).
//
// A call's status code gives its class (grpcload.Class: DEADLINE_EXCEEDED
// is a timeout, UNAVAILABLE without a server a refused or reset
// connection, any other error code a status failure, expectedCodes ok)
// and its Status the HTTP status google.rpc.Code documents for the code,
// so the thresholds, summaries and SLOs of HTTP read gRPC calls alike.

// GRPCSpec configures a scenario's gRPC calls.
type GRPCSpec struct {
	// ProtoFiles are .proto files that define the methods called, found
	// in the import paths as protoc finds them. Without them relia asks
	// each server for its services through gRPC server reflection.
	ProtoFiles []string `yaml:"protoFiles"`
	// ImportPaths are the directories the proto files and their imports
	// are found in, relative to the scenario file; default the scenario
	// file's directory. The well-known types (google/protobuf/*.proto)
	// are always there.
	ImportPaths []string `yaml:"importPaths"`
	// Connections is the number of HTTP/2 connections to each server,
	// over which calls are spread; default 1.
	Connections int `yaml:"connections"`
}

// isGRPC reports whether a URL (or a template's leading text) names a gRPC
// server.
func isGRPC(u string) bool {
	return strings.HasPrefix(u, "grpc://") || strings.HasPrefix(u, "grpcs://")
}

// grpcStep is what a gRPC request adds to its Step.
type grpcStep struct {
	target   string // host:port
	tls      bool
	method   string // package.Service/Method
	messages []*Template
	expected []codes.Code
	// call is the method's call, its messages encoded when they are
	// static; set by resolveGRPC.
	call   *grpcload.Call
	static bool
}

// grpcSetup is a Test's gRPC configuration, and the schemas resolved for
// it.
type grpcSetup struct {
	spec        GRPCSpec
	protoFiles  []string
	importPaths []string
	tls         *tls.Config

	mu       sync.Mutex
	resolved bool
}

// grpcStep compiles the gRPC part of a request whose URL is grpc://.
func (b *builder) grpcStep(path string, r *RequestSpec, st *Step) {
	u, err := url.Parse(st.URL.String())
	switch {
	case !st.URL.literal():
		b.bad(path+".path", "a gRPC URL names a server and a method: it may not hold template actions")
		return
	case err != nil:
		b.bad(path+".path", "malformed URL %q", st.URL.String())
		return
	case u.Port() == "":
		b.bad(path+".path", "%q: a gRPC server's address needs a port (grpc://host:50051/package.Service/Method)", st.URL.String())
		return
	case strings.Count(strings.Trim(u.Path, "/"), "/") != 1 || u.RawQuery != "":
		b.bad(path+".path", "%q: want grpc://host:port/package.Service/Method", st.URL.String())
		return
	}
	if r.Method != "" && !strings.EqualFold(r.Method, "POST") {
		b.bad(path+".method", "%q: a gRPC call is a POST; leave method out", r.Method)
	}
	st.Method = "POST"
	g := &grpcStep{target: u.Host, tls: u.Scheme == "grpcs", method: strings.Trim(u.Path, "/")}
	if r.Name == "" {
		st.Name = g.method
	}
	switch {
	case len(r.Messages) > 0 && r.Body != "":
		b.bad(path+".messages", "give body (one message) or messages (a stream), not both")
	case len(r.Messages) > 0:
		for i, m := range r.Messages {
			if t := b.template(fmt.Sprintf("%s.messages[%d]", path, i), m); t != nil {
				g.messages = append(g.messages, t)
			}
		}
	case st.Body != nil:
		g.messages = []*Template{st.Body}
	}
	for i, c := range r.ExpectedCodes {
		code, ok := grpcload.ParseCode(c)
		if !ok {
			b.bad(fmt.Sprintf("%s.expectedCodes[%d]", path, i), "%q is not a gRPC status code (OK, NOT_FOUND, UNAVAILABLE, ... or 0 to 16)", c)
			continue
		}
		g.expected = append(g.expected, code)
	}
	st.grpc = g
	if b.t.grpc == nil {
		b.grpcSetup()
	}
}

// grpcSetup compiles the scenario's gRPC settings: the proto files are
// parsed now, so that a syntax error is an error before the load.
func (b *builder) grpcSetup() {
	sp := &b.s.Spec
	g := &grpcSetup{spec: sp.GRPC}
	b.t.grpc = g
	if g.spec.Connections < 0 {
		b.bad("spec.grpc.connections", "%d is negative", g.spec.Connections)
	}
	g.spec.Connections = max(g.spec.Connections, 1)
	g.protoFiles = sp.GRPC.ProtoFiles
	for _, p := range sp.GRPC.ImportPaths {
		g.importPaths = append(g.importPaths, b.s.relPath(p))
	}
	if len(g.importPaths) == 0 {
		g.importPaths = []string{b.s.relPath(".")}
	}
	conf, err := b.t.Client.tlsConfig()
	if err != nil {
		return // reported with spec.tls
	}
	conf.NextProtos = []string{"h2"}
	g.tls = conf
	if len(g.protoFiles) > 0 {
		if _, err := g.fileSchema(context.Background()); err != nil {
			b.bad("spec.grpc.protoFiles", "%v", err)
		}
	} else if len(sp.GRPC.ImportPaths) > 0 {
		b.bad("spec.grpc.importPaths", "import paths need protoFiles")
	}
}

// fileSchema parses the proto files, found (as protoc finds them) in the
// import paths.
func (g *grpcSetup) fileSchema(ctx context.Context) (*grpcload.Schema, error) {
	return grpcload.ParseProtoFiles(ctx, g.importPaths, g.protoFiles...)
}

// dialOptions are the options of connections to gRPC servers.
func (g *grpcSetup) dialOptions(tlsOn bool) []grpc.DialOption {
	creds := insecure.NewCredentials()
	if tlsOn {
		creds = credentials.NewTLS(g.tls)
	}
	return []grpc.DialOption{grpc.WithTransportCredentials(creds)}
}

// resolveGRPC finds every gRPC request's method, in the proto files or
// through each server's reflection service, and encodes the messages
// that hold no template actions; messages that do are checked once with
// sample values. It runs once per Test.
func (t *Test) resolveGRPC(ctx context.Context) error {
	g := t.grpc
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.resolved {
		return nil
	}
	schemas := map[string]*grpcload.Schema{} // by target; one for all with proto files
	schema := func(s *grpcStep) (*grpcload.Schema, error) {
		key := s.target
		if len(g.protoFiles) > 0 {
			key = ""
		}
		if sc := schemas[key]; sc != nil {
			return sc, nil
		}
		var sc *grpcload.Schema
		var err error
		if key == "" {
			sc, err = g.fileSchema(ctx)
		} else {
			var conn *grpc.ClientConn
			conn, err = grpc.NewClient(s.target, g.dialOptions(s.tls)...)
			if err != nil {
				return nil, err
			}
			sc, err = grpcload.Reflect(ctx, conn)
			_ = conn.Close()
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.target, err)
		}
		schemas[key] = sc
		return sc, nil
	}
	env := sampleEnv(t)
	for _, st := range t.allSteps() {
		s := st.grpc
		if s == nil {
			continue
		}
		sc, err := schema(s)
		if err != nil {
			return fmt.Errorf("request %q: %w", st.Name, err)
		}
		md, err := sc.Method(s.method)
		if err != nil {
			return fmt.Errorf("request %q: %w", st.Name, err)
		}
		var msgs []string
		s.static = true
		for _, m := range s.messages {
			msgs = append(msgs, m.Render(env))
			s.static = s.static && m.literal()
		}
		call, err := grpcload.NewCall(md, msgs...)
		if err != nil {
			return fmt.Errorf("request %q: %w", st.Name, err)
		}
		if len(msgs) > 1 && call.Kind != grpcload.ClientStream && call.Kind != grpcload.BidiStream {
			return fmt.Errorf("request %q: %s is a %s method: it takes one message (body), not a stream", st.Name, s.method, call.Kind)
		}
		call.Timeout, call.KeepLast = t.Client.Timeout, st.needsBody
		s.call = call
	}
	g.resolved = true
	return nil
}

// allSteps are the test's steps with its setup and teardown.
func (t *Test) allSteps() []*Step {
	out := make([]*Step, 0, len(t.Steps)+2)
	for _, s := range append([]*Step{t.Setup, t.Teardown}, t.Steps...) {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// sampleEnv renders templates for checking, as the builder does.
func sampleEnv(t *Test) *Env {
	return (&builder{t: t}).sampleEnv()
}

// grpcClients are one run's connections to the gRPC servers its requests
// call, several per server when the scenario asks, used in turn.
type grpcClients struct {
	conns map[string][]*grpc.ClientConn
	next  atomic.Uint64
}

// dialGRPC makes the run's gRPC connections (nil when the test makes no
// gRPC call). Connections are made lazily by grpc-go; Preflight has
// already dialled each server.
func (t *Test) dialGRPC() (*grpcClients, error) {
	if t.grpc == nil {
		return nil, nil
	}
	c := &grpcClients{conns: map[string][]*grpc.ClientConn{}}
	for _, st := range t.allSteps() {
		s := st.grpc
		if s == nil || c.conns[s.target] != nil {
			continue
		}
		for range t.grpc.spec.Connections {
			conn, err := grpc.NewClient(s.target, t.grpc.dialOptions(s.tls)...)
			if err != nil {
				c.close()
				return nil, fmt.Errorf("connecting to %s: %w", s.target, err)
			}
			conn.Connect()
			c.conns[s.target] = append(c.conns[s.target], conn)
		}
	}
	return c, nil
}

func (c *grpcClients) pick(target string) *grpc.ClientConn {
	cs := c.conns[target]
	if len(cs) == 1 {
		return cs[0]
	}
	return cs[c.next.Add(1)%uint64(len(cs))]
}

func (c *grpcClients) close() {
	if c == nil {
		return
	}
	for _, cs := range c.conns {
		for _, conn := range cs {
			_ = conn.Close()
		}
	}
}

// grpcSession is one send state's gRPC part.
type grpcSession struct {
	clients *grpcClients
	inv     grpcload.Invoker
	msgs    [][]byte
	md      metadata.MD
}

// sendGRPC makes a gRPC step's call and runs its checks and extractions
// on the response as JSON.
func (w *Worker) sendGRPC(s *Step, st *sendState) StepResult {
	g := s.grpc
	gs := &st.grpc
	if gs.clients == nil {
		return StepResult{Err: errors.New("grpc call outside a run")}
	}
	gs.inv.Conn = gs.clients.pick(g.target)
	msgs := g.call.Messages
	if !g.static {
		gs.msgs = gs.msgs[:0]
		for i, m := range g.messages {
			st.req.body = m.Append(st.req.body[:0], &w.Env)
			b, err := grpcload.EncodeJSON(g.call.Method.Input(), st.req.body)
			if err != nil {
				return StepResult{Err: fmt.Errorf("message %d: %w", i+1, err)}
			}
			gs.msgs = append(gs.msgs, b)
		}
		msgs = gs.msgs
	}
	var md metadata.MD
	if len(s.Headers) > 0 {
		if gs.md == nil {
			gs.md = metadata.MD{}
		}
		clear(gs.md)
		for _, h := range s.Headers {
			k := strings.ToLower(h.Key)
			gs.md[k] = append(gs.md[k][:0], h.Value.Render(&w.Env))
		}
		md = gs.md
	}
	var res StepResult
	res.Sent = w.clock.Now()
	rep := gs.inv.InvokeWith(context.Background(), g.call, msgs, md)
	res.Done = w.clock.Now()
	w.Env.Iter++
	res.BytesIn, res.BytesOut = rep.BytesIn, rep.BytesOut
	res.Classified = true
	res.Class = grpcload.Class(rep.Code, rep.Err, g.expected)
	if res.Class == outcome.ClassOK || res.Class == outcome.ClassStatus {
		res.Status = grpcload.HTTPStatus(rep.Code)
	}
	if res.Class != outcome.ClassOK {
		res.Err = rep.Err
		return res
	}
	var body []byte
	if s.needsBody && rep.Code == codes.OK {
		b, err := grpcload.DecodeJSON(g.call.Method.Output(), rep.Last)
		if err != nil {
			res.Class, res.Err = outcome.ClassOther, err
			return res
		}
		body = b
	}
	res = w.judge(s, &res, st, body)
	if res.Err != nil { // an extraction failed
		res.Class = outcome.Classify(res.Err)
	}
	return res
}

// grpcStatePool is statePool with the run's gRPC connections in every
// send state.
func grpcStatePool(tr transport, gc *grpcClients) *sync.Pool {
	return &sync.Pool{New: func() any { return &sendState{sess: tr.session(), grpc: grpcSession{clients: gc}} }}
}

// literal reports whether the template is plain text throughout (Static
// asks the same of a template not joined to a prefix).
func (t *Template) literal() bool {
	for _, p := range t.parts {
		if p.kind != partText {
			return false
		}
	}
	return true
}
