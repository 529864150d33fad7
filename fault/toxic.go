package fault

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Direction says which way a toxic acts: upstream is client to upstream
// server, downstream is upstream server to client (Toxiproxy's meaning).
type Direction int

// The two directions of a connection.
const (
	Upstream Direction = iota
	Downstream
)

func (d Direction) String() string {
	if d == Upstream {
		return "upstream"
	}
	return "downstream"
}

func parseDirection(s string) (Direction, bool) {
	switch strings.ToLower(s) {
	case "upstream", "up", "u":
		return Upstream, true
	case "downstream", "down", "d":
		return Downstream, true
	}
	return 0, false
}

// DefaultLeaseTTL is the lease relia's Client asks for when a request
// names none, and the lease of a process fault that names none. A leased
// fault expires unless renewed, so it never outlives the runner that asked
// for it. A toxic created through Toxiproxy's API without lease_ttl has no
// lease and stays until removed, as in Toxiproxy, unless the server sets a
// default lease (Options.DefaultTTL).
const DefaultLeaseTTL = 60 * time.Second

// NoLease, as a lease_ttl, asks for a toxic without a lease, even on a
// server with a default lease: it stays until removed.
const NoLease = "none"

// MaxLeaseTTL bounds a lease so a typo cannot leave a fault in place for days.
const MaxLeaseTTL = 24 * time.Hour

// Toxic is one fault on a proxy in Toxiproxy's JSON shape, plus relia's
// lease. Attributes holds the type's attribute struct (LatencyToxic, ...).
type Toxic struct {
	Name       string  `json:"name"`
	Type       string  `json:"type"`
	Stream     string  `json:"stream"`
	Toxicity   float64 `json:"toxicity"`
	Attributes any     `json:"attributes"`
	// Lease is relia's: when the toxic expires unless renewed.
	Lease *Lease `json:"lease,omitempty"`
}

// Lease is the life of a fault: it ends at ExpiresAt unless renewed.
type Lease struct {
	// TTL is how long each renewal extends the lease, as a Go duration.
	TTL string `json:"ttl"`
	// ExpiresAt is when the fault is removed unless renewed before.
	ExpiresAt time.Time `json:"expires_at"`
}

// toxicRequest is the body of a create or update request. Unknown fields
// are refused, at the top and in attributes: a misspelt field is an error
// rather than a fault that silently does nothing. An update may carry the
// toxic as a client read it (name, type, stream and lease, unchanged).
type toxicRequest struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Stream     *string         `json:"stream"`
	Toxicity   *float64        `json:"toxicity"`
	Attributes json.RawMessage `json:"attributes"`
	LeaseTTL   string          `json:"lease_ttl"`
	// Lease is what a read of the toxic shows; it is ignored, since
	// lease_ttl asks for a lease.
	Lease json.RawMessage `json:"lease"`
}

// toxicSpec is a decoded, validated toxic.
type toxicSpec struct {
	name      string
	typ       string
	dir       Direction
	toxicity  float64
	impl      toxicImpl
	ttl       time.Duration // 0: no lease
	ttlMarked bool          // the request named a lease (or none)
}

// toxicImpl is a toxic's behaviour; its exported fields are its attributes.
type toxicImpl interface {
	validate() error
	// pipe passes p on through next, possibly late, in pieces, or not at
	// all; an error ends the connection.
	pipe(s *toxicState, p []byte, next func([]byte) error) error
}

// attacher is a toxic that acts on a connection without data flowing (a
// timeout that closes it); the returned function undoes what attach began.
type attacher interface {
	attach(s *toxicState) (detach func())
}

// closeDelayer is a toxic that holds a connection open after its end.
type closeDelayer interface {
	closeDelay() time.Duration
}

// refuser is a toxic that refuses new connections while enabled.
type refuser interface {
	refuses() bool
}

var toxicTypes = map[string]func() toxicImpl{
	"latency":    func() toxicImpl { return new(LatencyToxic) },
	"bandwidth":  func() toxicImpl { return new(BandwidthToxic) },
	"slow_close": func() toxicImpl { return new(SlowCloseToxic) },
	"timeout":    func() toxicImpl { return new(TimeoutToxic) },
	"reset_peer": func() toxicImpl { return new(ResetPeerToxic) },
	"slicer":     func() toxicImpl { return new(SlicerToxic) },
	"limit_data": func() toxicImpl { return new(LimitDataToxic) },
	"partition":  func() toxicImpl { return new(PartitionToxic) },
	"http":       func() toxicImpl { return new(HTTPToxic) },
	"chunk_loss": func() toxicImpl { return new(ChunkLossToxic) },
}

// ToxicTypes lists the toxic types relia knows, sorted.
func ToxicTypes() []string {
	names := make([]string, 0, len(toxicTypes))
	for n := range toxicTypes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// decodeToxic reads a create request the way Toxiproxy's AddToxicJson does:
// stream defaults to downstream, toxicity to 1, the name to type_stream.
func decodeToxic(r io.Reader) (*toxicSpec, error) {
	var req toxicRequest
	if err := decodeJSON(r, &req, "field"); err != nil {
		return nil, ErrBadRequestBody.detail("toxic: %v", err)
	}
	if req.Type == "" {
		return nil, ErrMissingField.detail("type (one of %s)", strings.Join(ToxicTypes(), ", "))
	}
	newImpl, ok := toxicTypes[req.Type]
	if !ok {
		return nil, ErrInvalidToxicType.detail("%s (known: %s)", quoteName(req.Type), strings.Join(ToxicTypes(), ", "))
	}
	stream := "downstream"
	if req.Stream != nil {
		stream = *req.Stream
	}
	dir, ok := parseDirection(stream)
	if !ok {
		return nil, ErrInvalidStream.detail("got %s", quoteName(stream))
	}
	spec := &toxicSpec{name: req.Name, typ: req.Type, dir: dir, toxicity: 1}
	if spec.name == "" {
		spec.name = req.Type + "_" + dir.String()
	}
	if err := checkName("toxic", spec.name, ""); err != nil {
		return nil, err
	}
	if req.Toxicity != nil {
		spec.toxicity = *req.Toxicity
	}
	if err := checkToxicity(spec.name, spec.toxicity); err != nil {
		return nil, err
	}
	spec.impl = newImpl()
	if err := decodeAttributes(spec.name, req.Attributes, spec.impl); err != nil {
		return nil, err
	}
	if err := parseLeaseTTL(req.LeaseTTL, spec); err != nil {
		return nil, err
	}
	return spec, nil
}

// decodeUpdate applies an update request to a copy of old, as Toxiproxy's
// UpdateToxicJson does: attributes and toxicity not named keep their values.
func decodeUpdate(old *toxicSpec, r io.Reader) (*toxicSpec, error) {
	var req toxicRequest
	if err := decodeJSON(r, &req, "field"); err != nil {
		return nil, ErrBadRequestBody.detail("toxic %s: %v", quoteName(old.name), err)
	}
	switch {
	case req.Name != "" && req.Name != old.name:
		return nil, ErrBadRequestBody.detail("toxic %s: a toxic cannot be renamed (got name %s)", quoteName(old.name), quoteName(req.Name))
	case req.Type != "" && req.Type != old.typ:
		return nil, ErrBadRequestBody.detail("toxic %s: its type %s cannot change to %s; remove it and add another", quoteName(old.name), old.typ, quoteName(req.Type))
	case req.Stream != nil:
		if dir, ok := parseDirection(*req.Stream); !ok || dir != old.dir {
			return nil, ErrBadRequestBody.detail("toxic %s: its stream %s cannot change to %s; remove it and add another", quoteName(old.name), old.dir, quoteName(*req.Stream))
		}
	}
	spec := *old
	if req.Toxicity != nil {
		spec.toxicity = *req.Toxicity
	}
	if err := checkToxicity(spec.name, spec.toxicity); err != nil {
		return nil, err
	}
	spec.impl = toxicTypes[old.typ]()
	cur, err := json.Marshal(old.impl)
	if err != nil {
		return nil, fmt.Errorf("copying attributes: %w", err)
	}
	if err := json.Unmarshal(cur, spec.impl); err != nil {
		return nil, fmt.Errorf("copying attributes: %w", err)
	}
	if err := decodeAttributes(spec.name, req.Attributes, spec.impl); err != nil {
		return nil, err
	}
	spec.ttlMarked = false
	if err := parseLeaseTTL(req.LeaseTTL, &spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

func checkToxicity(name string, t float64) error {
	if math.IsNaN(t) || t < 0 || t > 1 {
		return ErrBadRequestBody.detail("toxic %s: toxicity must be within [0, 1], got %v", quoteName(name), t)
	}
	return nil
}

// decodeAttributes reads a toxic's attributes into impl and checks them;
// errors name the toxic and the attribute.
func decodeAttributes(name string, raw json.RawMessage, impl toxicImpl) error {
	if len(raw) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		if err := decodeJSONBytes(raw, impl, "attribute"); err != nil {
			return ErrBadRequestBody.detail("toxic %s: %v", quoteName(name), err)
		}
	}
	if err := impl.validate(); err != nil {
		return ErrBadRequestBody.detail("toxic %s: %v", quoteName(name), err)
	}
	return nil
}

// parseLeaseTTL reads a lease_ttl: a Go duration, NoLease, or nothing
// (the server's default).
func parseLeaseTTL(s string, spec *toxicSpec) error {
	switch s {
	case "":
		return nil
	case NoLease:
		spec.ttl, spec.ttlMarked = 0, true
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return ErrBadRequestBody.detail("lease_ttl: want a duration such as \"30s\" or \"2m\", or %q, got %s", NoLease, quoteName(s))
	}
	if d <= 0 || d > MaxLeaseTTL {
		return ErrBadRequestBody.detail("lease_ttl must be within (0, %v], got %v", MaxLeaseTTL, d)
	}
	spec.ttl, spec.ttlMarked = d, true
	return nil
}

var errNegative = errors.New("must not be negative")

func nonNegative(name string, v int64) error {
	if v < 0 {
		return fmt.Errorf("%s %w, got %d", name, errNegative, v)
	}
	return nil
}

// maxMillis bounds attributes in milliseconds: a day, as for leases, and
// far below where a time.Duration would overflow.
const maxMillis = int64(MaxLeaseTTL / time.Millisecond)

// millis checks an attribute in milliseconds.
func millis(name string, v int64) error {
	if err := nonNegative(name, v); err != nil {
		return err
	}
	if v > maxMillis {
		return fmt.Errorf("%s must be at most %d ms (a day), got %d", name, maxMillis, v)
	}
	return nil
}

// maxRate bounds bandwidth in KB/s (about a petabyte per second), so the
// pacing arithmetic cannot overflow.
const maxRate = 1 << 40

func ms(v int64) time.Duration { return time.Duration(v) * time.Millisecond }

// LatencyToxic delays every chunk by Latency ms plus a random amount drawn
// from Distribution with spread Jitter ms.
type LatencyToxic struct {
	Latency int64 `json:"latency" unit:"milliseconds"`
	Jitter  int64 `json:"jitter" unit:"milliseconds"`
	// Distribution is relia's: "uniform" (the default, Toxiproxy's: within
	// ±jitter), "normal" (standard deviation jitter) or "pareto" (a
	// Pareto II tail of shape 2 and mean jitter, added to latency, capped
	// at 100 jitters), or "empirical" (Latency plus one of Samples, drawn
	// uniformly: replays a measured latency distribution). Delays below
	// zero are zero.
	Distribution string `json:"distribution,omitempty"`
	// Samples are relia's: latencies in ms (fractions allowed) that the
	// empirical distribution replays; at most MaxEmpiricalSamples.
	// LatencySamples takes them from a recorder of measured latencies.
	Samples []float64 `json:"samples,omitempty" unit:"milliseconds"`
}

func (t *LatencyToxic) validate() error {
	switch t.Distribution {
	case "", "uniform", "normal", "pareto":
		if len(t.Samples) > 0 {
			return errors.New("samples need distribution empirical")
		}
	case "empirical":
		if len(t.Samples) == 0 || len(t.Samples) > MaxEmpiricalSamples {
			return fmt.Errorf("distribution empirical needs 1 to %d samples, got %d", MaxEmpiricalSamples, len(t.Samples))
		}
		for _, v := range t.Samples {
			if math.IsNaN(v) || v < 0 || v > float64(MaxLeaseTTL/time.Millisecond) {
				return fmt.Errorf("samples must be within [0, %d] ms, got %v", MaxLeaseTTL/time.Millisecond, v)
			}
		}
	default:
		return fmt.Errorf("distribution must be uniform, normal, pareto or empirical, got %q", t.Distribution)
	}
	return errors.Join(millis("latency", t.Latency), millis("jitter", t.Jitter))
}

// delay draws one delay; u1 and u2 are uniform in [0, 1).
func (t *LatencyToxic) delay(u1, u2 float64) time.Duration {
	base, j := float64(ms(t.Latency)), float64(ms(t.Jitter))
	d := base
	switch t.Distribution {
	case "", "uniform":
		d += (2*u1 - 1) * j
	case "normal":
		// Box-Muller.
		d += j * math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
	case "pareto":
		d += min(j*(1/math.Sqrt(1-u1)-1), 100*j)
	case "empirical":
		d += t.Samples[min(int(u1*float64(len(t.Samples))), len(t.Samples)-1)] * float64(time.Millisecond)
	}
	return time.Duration(max(d, 0))
}

func (t *LatencyToxic) pipe(s *toxicState, p []byte, next func([]byte) error) error {
	d := ms(t.Latency)
	if t.Jitter > 0 || t.Distribution == "empirical" {
		d = t.delay(s.rng.Float64(), s.rng.Float64())
	}
	if err := s.wait(d); err != nil {
		return err
	}
	return next(p)
}

// BandwidthToxic limits throughput to Rate KB/s (0: unlimited).
type BandwidthToxic struct {
	Rate int64 `json:"rate" unit:"KB/s"`
}

func (t *BandwidthToxic) validate() error {
	if t.Rate > maxRate {
		return fmt.Errorf("rate must be at most %d KB/s, got %d", int64(maxRate), t.Rate)
	}
	return nonNegative("rate", t.Rate)
}

func (t *BandwidthToxic) pipe(s *toxicState, p []byte, next func([]byte) error) error {
	if t.Rate == 0 {
		return next(p)
	}
	// Send at most 100 ms worth at a time, each after the time it takes at
	// the rate, so the stream moves smoothly rather than in large bursts.
	piece := max(int(t.Rate*100), 1)
	for len(p) > 0 {
		n := min(piece, len(p))
		if err := s.wait(time.Duration(int64(n) * int64(time.Millisecond) / t.Rate)); err != nil {
			return err
		}
		if err := next(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// SlowCloseToxic delays closing the connection by Delay ms after its end.
type SlowCloseToxic struct {
	Delay int64 `json:"delay" unit:"milliseconds"`
}

func (t *SlowCloseToxic) validate() error                                             { return millis("delay", t.Delay) }
func (t *SlowCloseToxic) closeDelay() time.Duration                                   { return ms(t.Delay) }
func (t *SlowCloseToxic) pipe(_ *toxicState, p []byte, next func([]byte) error) error { return next(p) }

// TimeoutToxic black-holes data and closes the connection after Timeout ms;
// with 0 it holds the connection until the toxic goes.
type TimeoutToxic struct {
	Timeout int64 `json:"timeout" unit:"milliseconds"`
}

func (t *TimeoutToxic) validate() error                                    { return millis("timeout", t.Timeout) }
func (t *TimeoutToxic) pipe(*toxicState, []byte, func([]byte) error) error { return nil }
func (t *TimeoutToxic) attach(s *toxicState) func() {
	if t.Timeout == 0 {
		return func() {}
	}
	tm := s.clock().AfterFunc(ms(t.Timeout), s.link.close)
	return func() { tm.Stop() }
}

// ResetPeerToxic resets the connection (TCP RST) after Timeout ms.
type ResetPeerToxic struct {
	Timeout int64 `json:"timeout" unit:"milliseconds"`
}

func (t *ResetPeerToxic) validate() error { return millis("timeout", t.Timeout) }
func (t *ResetPeerToxic) pipe(_ *toxicState, p []byte, next func([]byte) error) error {
	return next(p)
}
func (t *ResetPeerToxic) attach(s *toxicState) func() {
	tm := s.clock().AfterFunc(ms(t.Timeout), s.link.reset)
	return func() { tm.Stop() }
}

// SlicerToxic cuts data into pieces of AverageSize ± SizeVariation bytes,
// Delay µs apart.
type SlicerToxic struct {
	AverageSize   int64 `json:"average_size" unit:"bytes"`
	SizeVariation int64 `json:"size_variation" unit:"bytes"`
	Delay         int64 `json:"delay" unit:"microseconds"`
}

func (t *SlicerToxic) validate() error {
	err := errors.Join(nonNegative("average_size", t.AverageSize),
		nonNegative("size_variation", t.SizeVariation), nonNegative("delay", t.Delay))
	if t.Delay > maxMillis*1000 {
		err = errors.Join(err, fmt.Errorf("delay must be at most %d µs (a day), got %d", maxMillis*1000, t.Delay))
	}
	if err == nil && t.SizeVariation >= max(t.AverageSize, 1) {
		err = fmt.Errorf("size_variation must be below average_size, got %d >= %d", t.SizeVariation, t.AverageSize)
	}
	return err
}

func (t *SlicerToxic) pipe(s *toxicState, p []byte, next func([]byte) error) error {
	if t.AverageSize == 0 {
		return next(p)
	}
	for first := true; len(p) > 0; first = false {
		if !first {
			if err := s.wait(time.Duration(t.Delay) * time.Microsecond); err != nil {
				return err
			}
		}
		n := t.AverageSize
		if t.SizeVariation > 0 {
			n += s.rng.Int64N(2*t.SizeVariation+1) - t.SizeVariation
		}
		n = min(n, int64(len(p)))
		if err := next(p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// LimitDataToxic closes the connection after Bytes bytes have passed.
type LimitDataToxic struct {
	Bytes int64 `json:"bytes" unit:"bytes"`
}

func (t *LimitDataToxic) validate() error { return nonNegative("bytes", t.Bytes) }
func (t *LimitDataToxic) pipe(s *toxicState, p []byte, next func([]byte) error) error {
	left := t.Bytes - s.passed
	if int64(len(p)) < left {
		s.passed += int64(len(p))
		return next(p)
	}
	if left > 0 {
		s.passed += left
		if err := next(p[:left]); err != nil {
			return err
		}
	}
	s.link.close()
	return errLinkClosed
}

// PartitionToxic is relia's network partition: while enabled it refuses
// new connections (they are accepted and closed at once) and black-holes
// the data of connections already open in its stream.
type PartitionToxic struct{}

func (*PartitionToxic) validate() error                                    { return nil }
func (*PartitionToxic) refuses() bool                                      { return true }
func (*PartitionToxic) pipe(*toxicState, []byte, func([]byte) error) error { return nil }

// HTTPToxic is relia's per-request fault for a proxy in HTTP mode; its
// attributes are an HTTPFault's and its toxicity is the share of matching
// requests it faults (0.0001 is 0.01%).
type HTTPToxic struct {
	HTTPFault
}

func (t *HTTPToxic) validate() error { return t.HTTPFault.validate() }

// pipe is never on a TCP chain: http toxics exist only in HTTP mode.
func (t *HTTPToxic) pipe(_ *toxicState, p []byte, next func([]byte) error) error { return next(p) }

// ChunkLossToxic is relia's: it drops each chunk of data (one read from
// the socket) with probability Rate, drawn from the connection's seeded
// stream. The stream stays open, so the peer sees data go missing.
type ChunkLossToxic struct {
	Rate float64 `json:"rate"`
}

func (t *ChunkLossToxic) validate() error {
	if math.IsNaN(t.Rate) || t.Rate < 0 || t.Rate > 1 {
		return fmt.Errorf("rate must be within [0, 1], got %v", t.Rate)
	}
	return nil
}

func (t *ChunkLossToxic) pipe(s *toxicState, p []byte, next func([]byte) error) error {
	if s.rng.Float64() < t.Rate {
		return nil
	}
	return next(p)
}
