package mock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/ai/wire"
	"github.com/relia-dev/relia/clock"
)

// The wire formats the simulator speaks, as named in Fault.API and
// Request.API.
const (
	APIOpenAI    = "openai"
	APIAnthropic = "anthropic"
	APIGemini    = "gemini"
	APIBedrock   = "bedrock"
)

// Defaults of Options.
const (
	DefaultOutputTokens        = 16
	DefaultEmbeddingDimensions = 8
	DefaultMaxRecords          = 10000
	// MaxBody bounds the request bodies the simulator reads.
	MaxBody = 4 << 20
)

// DefaultModels are the models GET /v1/models lists when Options.Models
// is empty; the simulator answers for any model name.
var DefaultModels = []string{"gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-3-5-haiku-latest", "gemini-2.0-flash"}

// Options configures a Server. Zero values mean the documented defaults.
type Options struct {
	// Clock schedules the first token and the tokens after it; nil means
	// the real clock.
	Clock clock.Clock
	// Seed decides which requests faults hit and which words answers
	// are made of: the same seed and the same requests give the same
	// run.
	Seed int64
	// TokensPerSecond paces a stream's tokens after the first; zero sends
	// them at once. A non-streaming answer takes as long as its stream
	// would.
	TokensPerSecond float64
	// TimeToFirstToken is the wait before the first token (before a
	// non-streaming answer's tokens).
	TimeToFirstToken time.Duration
	// OutputTokens is how many tokens an answer has when the request's
	// own cap (max_tokens and its kin) is not lower. Zero means
	// DefaultOutputTokens.
	OutputTokens int
	// ContextWindow, when positive, refuses a request whose prompt plus
	// output cap exceeds it with the provider's context-length error.
	// ContextWindows sets it per model and wins over it.
	ContextWindow  int
	ContextWindows map[string]int
	// Faults are injected from the start; SetFaults replaces them.
	Faults []Fault
	// Models are listed by GET /v1/models; empty means DefaultModels.
	Models []string
	// APIKeys, when set, are the only credentials accepted (as a Bearer
	// token, x-api-key, api-key, x-goog-api-key or ?key=); others get
	// 401. Bedrock requests need only an AWS Signature V4 Authorization
	// header.
	APIKeys []string
	// EmbeddingDimensions is the length of each embedding. Zero means
	// DefaultEmbeddingDimensions.
	EmbeddingDimensions int
	// MaxRecords bounds the requests Requests keeps (the newest). Zero
	// means DefaultMaxRecords.
	MaxRecords int
}

// Request is the simulator's record of one request it received.
type Request struct {
	// N numbers requests from 1 in arrival order.
	N uint64 `json:"n"`
	// Time is when it arrived, on the simulator's clock.
	Time time.Time `json:"time"`
	// API is the wire format it used; Op is "chat", "embeddings" or
	// "models".
	API    string `json:"api"`
	Op     string `json:"op"`
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
	// Key is the credential it carried (the last 4 characters only).
	Key string `json:"key"`
	// Fault is the kind of fault injected, if any.
	Fault FaultKind `json:"fault,omitempty"`
	// Status is the status answered.
	Status int `json:"status"`
}

// Server is the provider simulator, an http.Handler. It is safe for
// concurrent use.
type Server struct {
	o     Options
	clock clock.Clock
	seq   atomic.Uint64

	mu     sync.Mutex
	faults []Fault
	// records holds the newest requests, at most Options.MaxRecords. Once
	// full it is a ring whose oldest record is at oldest: a simulator
	// that served many requests keeps recording at a constant cost.
	records []Request
	oldest  int
}

// New returns a simulator, or an error naming an invalid option.
func New(o Options) (*Server, error) {
	switch {
	case o.TokensPerSecond < 0 || math.IsNaN(o.TokensPerSecond) || math.IsInf(o.TokensPerSecond, 0):
		return nil, fmt.Errorf("mock: tokens per second %v not a non-negative number", o.TokensPerSecond)
	case o.TimeToFirstToken < 0:
		return nil, errors.New("mock: negative time to first token")
	case o.OutputTokens < 0, o.ContextWindow < 0, o.EmbeddingDimensions < 0, o.MaxRecords < 0:
		return nil, errors.New("mock: negative count")
	}
	if o.OutputTokens == 0 {
		o.OutputTokens = DefaultOutputTokens
	}
	if o.EmbeddingDimensions == 0 {
		o.EmbeddingDimensions = DefaultEmbeddingDimensions
	}
	if o.MaxRecords == 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if len(o.Models) == 0 {
		o.Models = DefaultModels
	}
	s := &Server{o: o, clock: clock.OrReal(o.Clock)}
	if err := s.SetFaults(o.Faults); err != nil {
		return nil, err
	}
	return s, nil
}

// SetFaults replaces the faults injected into the requests that arrive
// from now on.
func (s *Server) SetFaults(faults []Fault) error {
	for i, f := range faults {
		if err := f.Validate(); err != nil {
			return fmt.Errorf("mock: fault %d: %w", i, err)
		}
	}
	s.mu.Lock()
	s.faults = slices.Clone(faults)
	s.mu.Unlock()
	return nil
}

// Faults returns the faults in force.
func (s *Server) Faults() []Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.faults)
}

// Requests returns the records of the requests received, oldest first
// (at most Options.MaxRecords of the newest).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Concat(s.records[s.oldest:], s.records[:s.oldest])
}

// Count returns how many requests the simulator has received.
func (s *Server) Count() uint64 { return s.seq.Load() }

func (s *Server) record(r Request) {
	s.mu.Lock()
	if len(s.records) < s.o.MaxRecords {
		s.records = append(s.records, r)
	} else {
		s.records[s.oldest] = r
		s.oldest = (s.oldest + 1) % len(s.records)
	}
	s.mu.Unlock()
}

// pickFault returns the fault request n hits, if any: the first listed
// fault that matches and whose rate draws it.
func (s *Server) pickFault(n uint64, api, model string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults {
		f := &s.faults[i]
		if !f.matches(api, model) {
			continue
		}
		if f.Rate == 0 || f.Rate == 1 || unit(s.o.Seed, n, uint64(i)) < f.Rate {
			c := *f
			return &c
		}
	}
	return nil
}

// job is one parsed request, whatever its wire format.
type job struct {
	api, op, model string
	stream         bool
	includeUsage   bool // OpenAI's stream_options.include_usage
	texts          []string
	limit          int // the request's output cap, 0 for none
	inputs         []string
	encoding       string          // embeddings: "float" or "base64"
	format         json.RawMessage // OpenAI's response_format
	n              uint64
	start          time.Time
}

// ServeHTTP answers one request in the format its path names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/mock/faults":
		s.serveFaults(w, r)
		return
	case p == "/mock/requests":
		writeJSON(w, http.StatusOK, s.Requests())
		return
	case p == "/v1/models" && r.Method == http.MethodGet:
		s.serveModels(w, r)
		return
	case r.Method != http.MethodPost:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	j := &job{start: s.clock.Now()}
	var d dialect
	var err error
	body, rerr := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	switch {
	case rerr != nil:
		return
	case len(body) > MaxBody:
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	switch {
	case p == "/v1/chat/completions":
		d, err = openAI{}, j.parseOpenAIChat(body)
	case p == "/v1/embeddings":
		d, err = openAI{}, j.parseOpenAIEmbeddings(body)
	case strings.HasPrefix(p, "/openai/deployments/"):
		d, err = openAI{}, j.parseAzure(p, body)
	case p == "/v1/messages":
		d, err = anthropic{}, j.parseAnthropic(body)
	case strings.HasPrefix(p, "/v1beta/models/") || strings.HasPrefix(p, "/v1/models/"):
		d, err = gemini{}, j.parseGemini(p, r.URL.Query().Get("alt"), body)
	case strings.HasPrefix(p, "/model/"):
		d, err = bedrock{}, j.parseBedrock(p, body)
	default:
		http.Error(w, "no such endpoint: "+p, http.StatusNotFound)
		return
	}
	j.n = s.seq.Add(1)
	rec := Request{N: j.n, Time: j.start, API: j.api, Op: j.op, Model: j.model, Stream: j.stream, Key: keyTail(r)}
	defer func() { s.record(rec) }()
	if err != nil {
		rec.Status = http.StatusBadRequest
		d.writeError(w, http.StatusBadRequest, "invalid request: "+err.Error(), "", 0)
		return
	}
	if !s.authorized(r, j.api) {
		rec.Status = http.StatusUnauthorized
		d.writeError(w, http.StatusUnauthorized, "invalid API key", "", 0)
		return
	}
	f := s.pickFault(j.n, j.api, j.model)
	if f != nil {
		rec.Fault = f.Kind
	}
	if f != nil && f.Kind == FaultStatus {
		rec.Status = f.Status
		msg, code := faultMessage(f.Status)
		d.writeError(w, f.Status, msg, code, f.RetryAfter)
		return
	}
	if j.op == "embeddings" {
		rec.Status = http.StatusOK
		d.writeEmbeddings(w, j, s.embeddings(j))
		return
	}
	prompt := promptTokens(j.texts)
	window := s.o.ContextWindow
	if cw, ok := s.o.ContextWindows[j.model]; ok {
		window = cw
	}
	if window > 0 && prompt+j.limit > window {
		rec.Status = http.StatusBadRequest
		d.writeError(w, http.StatusBadRequest, fmt.Sprintf("This model's maximum context length is %d tokens. However, you requested %d tokens (%d in the messages, %d in the completion).", window, prompt+j.limit, prompt, j.limit), wire.CodeContextLength, 0)
		return
	}
	n, finish := s.o.OutputTokens, "stop"
	if j.limit > 0 && j.limit < n {
		n, finish = j.limit, "length"
	}
	a := &answer{job: j, prompt: prompt, tokens: outputWords(s.o.Seed, joinText(j.texts), n), finish: finish}
	if toks, ok := jsonAnswer(s.o.Seed, joinText(j.texts), j.format); ok {
		a.tokens, a.finish = toks, "stop"
	}
	rec.Status = http.StatusOK
	if f != nil && f.Kind == FaultErrorEvent && !j.stream {
		rec.Status = errorEventStatus(f)
		msg, code := faultMessage(rec.Status)
		d.writeError(w, rec.Status, msg, code, 0)
		return
	}
	if j.stream {
		s.stream(r.Context(), w, d, a, f)
		return
	}
	s.whole(r.Context(), w, d, a, f)
}

// answer is what the simulator generates for a chat request.
type answer struct {
	*job
	prompt int
	tokens []string
	finish string
}

func (a *answer) text() string { return strings.Join(a.tokens, "") }

// firstTokenWait is the wait before the first token.
func (s *Server) firstTokenWait(f *Fault) time.Duration {
	d := s.o.TimeToFirstToken
	if f != nil && f.Kind == FaultSlowFirstToken {
		d += f.Delay
	}
	return d
}

// tokenGap is the wait between tokens.
func (s *Server) tokenGap() time.Duration {
	if s.o.TokensPerSecond == 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / s.o.TokensPerSecond)
}

// whole answers a non-streaming request after the time its stream would
// have taken.
func (s *Server) whole(ctx context.Context, w http.ResponseWriter, d dialect, a *answer, f *Fault) {
	wait := s.firstTokenWait(f) + time.Duration(max(len(a.tokens)-1, 0))*s.tokenGap()
	if clock.Sleep(ctx, s.clock, wait) != nil {
		return
	}
	if f != nil && f.Kind == FaultStall {
		<-ctx.Done()
		return
	}
	body := d.answer(a)
	w.Header().Set("Content-Type", "application/json")
	if f != nil && f.Kind == FaultTruncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		panic(http.ErrAbortHandler) // closes the connection mid-body
	}
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// stream sends a streaming answer token by token.
func (s *Server) stream(ctx context.Context, w http.ResponseWriter, d dialect, a *answer, f *Fault) {
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", d.streamType())
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush() // the head goes out now, as a provider's does, before the first token
	}
	var buf []byte
	flush := func() bool {
		if _, err := w.Write(buf); err != nil {
			return false
		}
		buf = buf[:0]
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	if clock.Sleep(ctx, s.clock, s.firstTokenWait(f)) != nil {
		return
	}
	events := newTokenEvents(d, a)
	gap := s.tokenGap()
	if gap == 0 {
		pooled := streamBuffer(1024 + events.size())
		buf = (*pooled)[:0]
		defer func() { *pooled = buf[:0]; putStreamBuffer(pooled) }()
	}
	buf = d.streamStart(buf, a)
	for i, tok := range a.tokens {
		if f != nil && i == f.AfterTokens {
			switch f.Kind {
			case FaultStall:
				flush()
				<-ctx.Done()
				return
			case FaultTruncate:
				flush()
				panic(http.ErrAbortHandler)
			case FaultErrorEvent:
				status := errorEventStatus(f)
				msg, _ := faultMessage(status)
				buf = d.streamError(buf, a, status, msg)
				flush()
				return
			}
		}
		if i > 0 && gap > 0 {
			if !flush() || clock.Sleep(ctx, s.clock, gap) != nil {
				return
			}
		}
		buf = events.append(buf, i, tok)
	}
	buf = d.streamEnd(buf, a)
	// No flush: the server sends these last bytes with the body's end
	// once the handler returns, in one write rather than two.
	w.Write(buf)
}

// streamBuffers keeps the buffers of answers sent at once. The whole
// answer is written from one buffer (19 KB for 100 tokens), which a
// simulator answering thousands of streams a second otherwise allocated
// for each; the ResponseWriter is done with it when Write returns.
var streamBuffers sync.Pool // of *[]byte

// maxPooledStream is the largest buffer kept for another stream: a rare
// long answer's buffer goes to the collector rather than stay held.
const maxPooledStream = 256 << 10

// streamBuffer returns a buffer of at least size bytes' capacity.
func streamBuffer(size int) *[]byte {
	if p, ok := streamBuffers.Get().(*[]byte); ok {
		if cap(*p) >= size {
			return p
		}
		*p = make([]byte, 0, size)
		return p
	}
	b := make([]byte, 0, size)
	return &b
}

func putStreamBuffer(p *[]byte) {
	if cap(*p) <= maxPooledStream {
		streamBuffers.Put(p)
	}
}

func errorEventStatus(f *Fault) int {
	if f.Status == 0 {
		return http.StatusInternalServerError
	}
	return f.Status
}

// faultMessage returns the message and OpenAI code of an injected error.
func faultMessage(status int) (msg, code string) {
	switch status {
	case http.StatusTooManyRequests:
		return "Rate limit reached (injected by relia ai mock)", wire.CodeRateLimit
	case wire.StatusOverloaded:
		return "Overloaded (injected by relia ai mock)", ""
	case http.StatusBadRequest:
		return "This model's maximum context length was exceeded (injected by relia ai mock)", wire.CodeContextLength
	case http.StatusServiceUnavailable:
		return "The service is temporarily unavailable (injected by relia ai mock)", ""
	}
	return "The server had an error while processing your request (injected by relia ai mock)", ""
}

// embeddings returns one deterministic unit-length vector per input.
func (s *Server) embeddings(j *job) [][]float64 {
	out := make([][]float64, len(j.inputs))
	for i, in := range j.inputs {
		v := make([]float64, s.o.EmbeddingDimensions)
		var norm float64
		for k := range v {
			v[k] = unit(s.o.Seed, uint64(k), hashString(in))*2 - 1
			norm += v[k] * v[k]
		}
		norm = math.Sqrt(norm)
		for k := range v {
			v[k] = math.Round(v[k]/norm*1e6) / 1e6
		}
		out[i] = v
	}
	return out
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// authorized checks the request's credential against Options.APIKeys.
func (s *Server) authorized(r *http.Request, api string) bool {
	if api == APIBedrock {
		return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ")
	}
	if len(s.o.APIKeys) == 0 {
		return true
	}
	return slices.Contains(s.o.APIKeys, credential(r))
}

// credential returns the API key a request carries in any provider's
// header.
func credential(r *http.Request) string {
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return v
	}
	for _, h := range []string{"X-Api-Key", "Api-Key", "X-Goog-Api-Key"} {
		if v := r.Header.Get(h); v != "" {
			return v
		}
	}
	return r.URL.Query().Get("key")
}

func keyTail(r *http.Request) string {
	k := credential(r)
	if len(k) > 4 {
		k = k[len(k)-4:]
	}
	return k
}

func (s *Server) serveModels(w http.ResponseWriter, r *http.Request) {
	list := wire.ModelList{Object: "list"}
	for _, m := range s.o.Models {
		list.Data = append(list.Data, wire.ModelInfo{ID: m, Object: "model", Created: 1700000000, OwnedBy: "relia-mock"})
	}
	s.record(Request{N: s.seq.Add(1), Time: s.clock.Now(), API: APIOpenAI, Op: "models", Key: keyTail(r), Status: http.StatusOK})
	writeJSON(w, http.StatusOK, list)
}

// serveFaults reads (GET) or replaces (PUT, a JSON list of faults) the
// faults in force.
func (s *Server) serveFaults(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, http.StatusOK, s.Faults())
	case http.MethodPut, http.MethodPost:
		var faults []Fault
		dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&faults); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "decoding faults: " + err.Error()})
			return
		}
		if err := s.SetFaults(faults); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s.Faults())
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// retryAfterSeconds renders a Retry-After in whole seconds, rounded up.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
