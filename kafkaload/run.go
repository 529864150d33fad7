package kafkaload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/relia-dev/relia/clock"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// The record headers a test's records carry.
const (
	// HeaderDue is when the record was due to be produced, Unix
	// nanoseconds in 8 bytes big-endian: the consumer's end-to-end
	// latency runs from it.
	HeaderDue = "relia-due"
	// HeaderRun tells the test's records from any others on the topic.
	HeaderRun = "relia-run"
)

// Defaults of Options.
const (
	DefaultPartitions  = 3
	DefaultMessageSize = 100
	DefaultMaxInFlight = 10_000
	DefaultDrain       = 10 * time.Second
)

// Dialer opens a connection to a broker, as net.Dialer.DialContext does.
type Dialer func(ctx context.Context, network, address string) (net.Conn, error)

// Options configure a Kafka load test: records produced to Topic on an
// arrival schedule (the open model: a slow broker does not slow the
// schedule down), read back by a consumer that measures each record's
// end-to-end latency and follows its own lag.
type Options struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topic is the topic to produce to and consume from. A topic that does
	// not exist is created with Partitions partitions.
	Topic string
	// Partitions is the partition count of a topic the test creates;
	// default 3.
	Partitions int32
	// Schedule is when each record is due.
	Schedule *load.Schedule
	// MaxInFlight caps the records produced and not yet acknowledged; an
	// arrival that finds the cap reached is dropped and counted, never
	// queued. Default 10,000.
	MaxInFlight int
	// MessageSize is the size of each record's value in bytes; default
	// 100.
	MessageSize int
	// Acks is what the producer waits for: "all" (default: every in-sync
	// replica), "leader", or "none" (no acknowledgement, so no produce
	// latency either).
	Acks string
	// NoConsume produces only.
	NoConsume bool
	// Drain is how long the consumer may take, after the last record was
	// acknowledged, to read what is left; default 10s. Records still
	// unread then count as unconsumed.
	Drain time.Duration
	// LateAfter is how late a record may be sent and still count as on
	// time; default load.DefaultLateAfter. MinOnTime is the share that
	// must be on time for the run to be judged (see Result.Judge);
	// default load.DefaultMinOnTime, and a negative value turns the
	// check off.
	LateAfter time.Duration
	MinOnTime float64
	// Thresholds judge the run (see Metrics).
	Thresholds []load.Threshold
	// ClientOptions are added to both clients' options (TLS, SASL).
	ClientOptions []kgo.Opt
	// ProducerDial and ConsumerDial, when set, open the producer's and the
	// consumer's connections to brokers: a test puts a fault proxy in the
	// consumer's path this way and leaves the producer's alone.
	ProducerDial, ConsumerDial Dialer
	// Progress, when set, is called once a second while records are
	// produced, from a goroutine of the run's own.
	Progress func(Progress)
	// Clock is the time source; nil means the real clock.
	Clock clock.Clock
}

// Progress is a snapshot of a run for a progress line.
type Progress struct {
	Elapsed, Duration time.Duration
	// Acked and Consumed count records acknowledged and read back so far;
	// Lag is the consumer's lag summed over the partitions.
	Acked, Consumed, Lag int64
}

// Run creates the topic if it is missing, then produces on schedule while
// the consumer reads, waits up to Drain for the consumer to catch up, and
// returns what it measured. Cancelling ctx stops the load early; the
// Result then says so in Stopped.
func Run(ctx context.Context, o Options) (*Result, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	r := &run{o: o, clk: clock.OrReal(o.Clock), runID: make([]byte, 8)}
	binary.BigEndian.PutUint64(r.runID, rand.Uint64())
	start, err := r.prepareTopic(ctx)
	if err != nil {
		return nil, err
	}
	r.res = newResult(o, start)
	if err := r.clients(start); err != nil {
		return nil, err
	}
	defer r.prod.Close()
	if r.cons != nil {
		defer r.cons.Close()
	}
	return r.run(ctx), nil
}

func (o *Options) defaults() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("kafka load: no broker given")
	case o.Topic == "":
		return errors.New("kafka load: no topic given")
	case o.Schedule == nil:
		return errors.New("kafka load: no schedule given")
	case o.Partitions < 0, o.MaxInFlight < 0, o.MessageSize < 0, o.Drain < 0, o.LateAfter < 0:
		return errors.New("kafka load: partitions, max in flight, message size, drain and late after may not be negative")
	}
	if o.Partitions == 0 {
		o.Partitions = DefaultPartitions
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MessageSize == 0 {
		o.MessageSize = DefaultMessageSize
	}
	if o.Drain == 0 {
		o.Drain = DefaultDrain
	}
	if o.LateAfter == 0 {
		o.LateAfter = load.DefaultLateAfter
	}
	if o.MinOnTime == 0 {
		o.MinOnTime = load.DefaultMinOnTime
	}
	switch o.Acks {
	case "", "all", "leader", "none":
	default:
		return fmt.Errorf("kafka load: acks %q: want all, leader or none", o.Acks)
	}
	for _, th := range o.Thresholds {
		if _, ok := Metrics[th.Metric]; !ok {
			return fmt.Errorf("kafka load: threshold on %s: not a Kafka load metric", th.Metric)
		}
		if th.Window > 0 || th.AbortOnFail {
			return fmt.Errorf("kafka load: threshold %s %s: windows and abortOnFail are not supported; the run is judged as a whole", load.ThresholdRef(th), th.Expr)
		}
	}
	return nil
}

// run is one test's state.
type run struct {
	o     Options
	clk   clock.Clock
	runID []byte
	res   *Result
	prod  *kgo.Client
	cons  *kgo.Client
	value []byte // every record's value: read-only, shared

	parts    []int32
	index    map[int32]int  // partition -> position in parts and the arrays below
	produced []atomic.Int64 // per partition: the end offset after our acknowledged records
	hwm      []atomic.Int64 // per partition: the high watermark the consumer last saw
	next     []atomic.Int64 // per partition: the next offset the consumer reads
	inFlight atomic.Int64   // produced, not yet acknowledged
	pending  sync.WaitGroup // promises not yet called
	acked    atomic.Int64   // records acknowledged
	consumed atomic.Int64   // records of this run read back
	onTime   atomic.Int64   // records sent within LateAfter
}

// prepareTopic makes sure the topic exists and returns every partition's
// end offset before the test writes to it: where the consumer starts.
func (r *run) prepareTopic(ctx context.Context) (map[int32]int64, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(r.o.Brokers...)}, r.o.ClientOptions...)
	if r.o.ProducerDial != nil {
		opts = append(opts, kgo.Dialer(r.o.ProducerDial))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka load: making the admin client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, r.o.Topic)
	if err == nil {
		err = ends.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		resp, err := adm.CreateTopic(ctx, r.o.Partitions, -1, nil, r.o.Topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			return nil, fmt.Errorf("kafka load: creating topic %s: %w", r.o.Topic, err)
		}
		// A topic just made is empty: every partition starts at 0.
		start := map[int32]int64{}
		for p := range max(resp.NumPartitions, r.o.Partitions) {
			start[p] = 0
		}
		return start, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kafka load: reading the end offsets of %s: %w", r.o.Topic, err)
	}
	start := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { start[o.Partition] = o.Offset })
	if len(start) == 0 {
		return nil, fmt.Errorf("kafka load: topic %s has no partitions", r.o.Topic)
	}
	return start, nil
}

// clients makes the producer and the consumer, which reads every
// partition from where it ended before the test.
func (r *run) clients(start map[int32]int64) error {
	for p := range start {
		r.parts = append(r.parts, p)
	}
	slices.Sort(r.parts)
	r.index = map[int32]int{}
	for i, p := range r.parts {
		r.index[p] = i
	}
	r.produced = make([]atomic.Int64, len(r.parts))
	r.hwm = make([]atomic.Int64, len(r.parts))
	r.next = make([]atomic.Int64, len(r.parts))
	for i, p := range r.parts {
		r.produced[i].Store(start[p])
		r.hwm[i].Store(start[p])
		r.next[i].Store(start[p])
	}
	r.value = make([]byte, r.o.MessageSize)
	popts := append([]kgo.Opt{
		kgo.SeedBrokers(r.o.Brokers...),
		kgo.DefaultProduceTopic(r.o.Topic),
		// Records spread evenly, so every partition has figures.
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.MaxBufferedRecords(r.o.MaxInFlight + 1),
		// A load test reports failures; it does not hide them behind
		// retries that last longer than the run.
		kgo.RecordDeliveryTimeout(max(r.o.Drain, 5*time.Second)),
	}, r.o.ClientOptions...)
	switch r.o.Acks {
	case "leader":
		popts = append(popts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		popts = append(popts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	if r.o.ProducerDial != nil {
		popts = append(popts, kgo.Dialer(r.o.ProducerDial))
	}
	var err error
	if r.prod, err = kgo.NewClient(popts...); err != nil {
		return fmt.Errorf("kafka load: making the producer: %w", err)
	}
	if r.o.NoConsume {
		return nil
	}
	offsets := map[int32]kgo.Offset{}
	for p, off := range start {
		offsets[p] = kgo.NewOffset().At(off)
	}
	copts := append([]kgo.Opt{
		kgo.SeedBrokers(r.o.Brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.o.Topic: offsets}),
		kgo.FetchMaxWait(200 * time.Millisecond),
	}, r.o.ClientOptions...)
	if r.o.ConsumerDial != nil {
		copts = append(copts, kgo.Dialer(r.o.ConsumerDial))
	}
	if r.cons, err = kgo.NewClient(copts...); err != nil {
		r.prod.Close()
		return fmt.Errorf("kafka load: making the consumer: %w", err)
	}
	return nil
}

func (r *run) run(ctx context.Context) *Result {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	consCtx, stopCons := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	if r.cons != nil {
		bg.Add(1)
		go func() { defer bg.Done(); r.consume(consCtx) }() // ends with consCtx
	}
	start := r.clk.Now()
	// On the wall clock alone, as the result's JSON keeps it: spans and
	// rates then come out the same here as from the file (load.Test.Run).
	r.res.Start = start.Round(0)
	sampleCtx, stopSampler := context.WithCancel(context.Background())
	bg.Add(1)
	go func() { defer bg.Done(); r.sample(sampleCtx, runCtx) }() // ends with sampleCtx
	e := &load.OpenExecutor{Schedule: r.o.Schedule, MaxInFlight: r.o.MaxInFlight, Clock: r.clk,
		Do: r.produce, Drop: r.drop}
	st := e.Run(runCtx, start)
	r.res.Dispatched, r.res.Dropped = st.Dispatched, st.Dropped
	r.res.End = r.clk.Now().Round(0)
	if ctx.Err() != nil {
		r.res.Stopped = "interrupted"
	}
	// Every record gets its answer (or its delivery timeout) before the
	// drain starts.
	_ = r.prod.Flush(context.Background())
	r.pending.Wait()
	if r.cons != nil {
		r.drain(ctx)
	}
	stopCons()
	stopSampler()
	bg.Wait()
	r.res.Acked, r.res.Consumed = r.acked.Load(), r.consumed.Load()
	r.res.Unconsumed = 0
	if !r.o.NoConsume {
		r.res.Unconsumed = max(0, r.res.Acked-r.res.Consumed)
	}
	r.res.OnTime = r.onTime.Load()
	if r.cons != nil {
		r.res.lastLag(r.lags(r.clk.Now()))
	}
	return r.res
}

// produce sends one record; its promise records the outcome.
func (r *run) produce(ctx context.Context, a load.Arrival) {
	sent := r.clk.Now()
	lag := sent.Sub(a.Due)
	r.res.ScheduleLag.Record(outcome.Outcome{Start: a.Due, Latency: lag})
	if lag <= r.o.LateAfter {
		r.onTime.Add(1)
	}
	due := make([]byte, 8)
	binary.BigEndian.PutUint64(due, uint64(a.Due.UnixNano()))
	rec := &kgo.Record{Value: r.value, Headers: []kgo.RecordHeader{{Key: HeaderDue, Value: due}, {Key: HeaderRun, Value: r.runID}}}
	r.inFlight.Add(1)
	r.pending.Add(1)
	// The record's context is not the run's: a record produced before
	// the run was stopped still gets its answer.
	r.prod.Produce(context.WithoutCancel(ctx), rec, func(rec *kgo.Record, err error) {
		defer r.pending.Done()
		defer r.inFlight.Add(-1)
		done := r.clk.Now()
		o := outcome.Outcome{Start: a.Due, Latency: done.Sub(a.Due), ServiceTime: max(done.Sub(sent), 1),
			BytesOut: int64(len(rec.Value) + len(HeaderDue) + len(HeaderRun) + 16), Class: produceClass(err)}
		r.res.Produce.Record(o)
		if err != nil {
			return
		}
		r.acked.Add(1)
		if i, ok := r.index[rec.Partition]; ok {
			r.res.ProduceByPartition[rec.Partition].Record(o)
			storeMax(&r.produced[i], rec.Offset+1)
		}
	})
}

// produceClass classifies a produce error: a broker's error code is the
// broker answering (status), the rest are the transport's.
func produceClass(err error) outcome.Class {
	var ke *kerr.Error
	switch {
	case err == nil:
		return outcome.ClassOK
	case errors.As(err, &ke):
		return outcome.ClassStatus
	case errors.Is(err, kgo.ErrRecordTimeout):
		return outcome.ClassTimeout
	}
	return outcome.Classify(err)
}

func (r *run) drop(a load.Arrival) {
	r.res.Produce.Record(outcome.Outcome{Start: a.Due, Class: outcome.ClassDropped})
}

// consume reads records until ctx ends, measuring each of this run's
// records from its due time.
func (r *run) consume(ctx context.Context) {
	for ctx.Err() == nil {
		fs := r.cons.PollFetches(ctx)
		now := r.clk.Now()
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			i, ok := r.index[p.Partition]
			if !ok {
				return
			}
			if p.Err == nil {
				storeMax(&r.hwm[i], p.HighWatermark)
			}
			for _, rec := range p.Records {
				storeMax(&r.next[i], rec.Offset+1)
				due, ours := r.due(rec)
				if !ours {
					continue
				}
				r.consumed.Add(1)
				o := outcome.Outcome{Start: due, Latency: max(now.Sub(due), 0), BytesIn: int64(len(rec.Value))}
				r.res.E2E.Record(o)
				r.res.E2EByPartition[p.Partition].Record(o)
			}
		})
	}
}

// due reads a record's due time, and whether the record is this run's.
func (r *run) due(rec *kgo.Record) (time.Time, bool) {
	var due time.Time
	ours := false
	for _, h := range rec.Headers {
		switch h.Key {
		case HeaderRun:
			ours = string(h.Value) == string(r.runID)
		case HeaderDue:
			if len(h.Value) == 8 {
				due = time.Unix(0, int64(binary.BigEndian.Uint64(h.Value)))
			}
		}
	}
	return due, ours && !due.IsZero()
}

// drain waits until the consumer has read up to every partition's end,
// or Drain has passed, or ctx ends.
func (r *run) drain(ctx context.Context) {
	deadline := r.clk.Now().Add(r.o.Drain)
	for r.consumed.Load() < r.acked.Load() && r.clk.Now().Before(deadline) {
		if clock.Sleep(ctx, r.clk, 50*time.Millisecond) != nil {
			return
		}
	}
}

// sample records every partition's consumer lag once a second, and
// reports progress while production runs.
func (r *run) sample(ctx, producing context.Context) {
	for n := 1; ; n++ {
		at := r.res.Start.Add(time.Duration(n) * time.Second)
		if clock.Sleep(ctx, r.clk, at.Sub(r.clk.Now())) != nil {
			return
		}
		p := Progress{Elapsed: at.Sub(r.res.Start), Duration: r.res.Duration, Acked: r.acked.Load(), Consumed: r.consumed.Load()}
		if r.cons != nil {
			lags := r.lags(at)
			r.res.addLags(at, lags)
			for _, l := range lags {
				p.Lag += l.Lag
			}
		}
		if r.o.Progress != nil && producing.Err() == nil && p.Elapsed <= p.Duration {
			r.o.Progress(p)
		}
	}
}

// lags is every partition's lag now: the newest end offset known (from
// the producer's acknowledgements or the consumer's fetches) less the
// next offset the consumer reads.
func (r *run) lags(at time.Time) []LagSample {
	out := make([]LagSample, len(r.parts))
	for i, p := range r.parts {
		end := max(r.produced[i].Load(), r.hwm[i].Load())
		out[i] = LagSample{T: at.UTC(), Partition: p, Lag: max(end-r.next[i].Load(), 0)}
	}
	return out
}

func storeMax(a *atomic.Int64, v int64) {
	for {
		old := a.Load()
		if v <= old || a.CompareAndSwap(old, v) {
			return
		}
	}
}

// ParseBrokers splits a comma-separated broker list.
func ParseBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}
