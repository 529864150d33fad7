package kafkaload_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/kafkaload"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// broker starts an in-process Kafka broker on a loopback port of its own.
func broker(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
		return net.Listen(network, "127.0.0.1:0")
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func schedule(t *testing.T, rate float64, d time.Duration) *load.Schedule {
	t.Helper()
	s, err := load.ConstantSchedule(rate, d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func thresholds(t *testing.T, specs ...string) []load.Threshold {
	t.Helper()
	var out []load.Threshold
	for _, s := range specs {
		th, err := load.ParseThresholdFlagIn(kafkaload.Metrics, s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, th)
	}
	return out
}

// quick are client options that retry soon, so a test that cuts a
// connection sees the client back within its few seconds.
var quick = []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond })}

func run(t *testing.T, o kafkaload.Options) *kafkaload.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	o.ClientOptions = append(o.ClientOptions, quick...)
	o.MinOnTime = -1 // judged apart, in TestJudgeGeneratorFirst
	res, err := kafkaload.Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	// On the wall clock alone, as the result's JSON keeps them: the span
	// its rates divide by is the span read back from its file.
	if res.Start != res.Start.Round(0) || res.End != res.End.Round(0) {
		t.Errorf("the result's start and end carry the monotonic clock: %v, %v", res.Start, res.End)
	}
	return res
}

func TestProduceConsumeEndToEnd(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	res := run(t, kafkaload.Options{
		Brokers: []string{addr}, Topic: "orders", Partitions: 3, Schedule: schedule(t, 200, 1500*time.Millisecond),
		Thresholds: thresholds(t, "kafka_unconsumed:count==0", "kafka_produced{partition:1}:count==100",
			"kafka_consumer_lag:value<1000000", "kafka_consumed:count>1000"),
	})
	if res.Planned != 300 || res.Dispatched != 300 || res.Acked != 300 || res.Consumed != 300 || res.Unconsumed != 0 {
		t.Fatalf("planned %d dispatched %d acked %d consumed %d unconsumed %d", res.Planned, res.Dispatched, res.Acked, res.Consumed, res.Unconsumed)
	}
	if len(res.Partitions) != 3 {
		t.Fatalf("partitions %v", res.Partitions)
	}
	for _, p := range res.Partitions {
		if n := res.E2EByPartition[p].Total().Latency.Count(); n != 100 {
			t.Errorf("partition %d: %d records read back, want 100 (round robin)", p, n)
		}
		if n := res.ProduceByPartition[p].Total().Latency.Count(); n != 100 {
			t.Errorf("partition %d: %d records acknowledged, want 100", p, n)
		}
	}
	if n := res.E2E.Total().Latency.Count(); n != 300 {
		t.Errorf("end-to-end latencies: %d, want 300", n)
	}
	if len(res.ConsumerLag) < 3 {
		t.Errorf("lag sampled %d times, want each second for each partition", len(res.ConsumerLag))
	}
	for _, s := range res.FinalLag {
		if s.Lag != 0 {
			t.Errorf("final lag of partition %d is %d, want 0", s.Partition, s.Lag)
		}
	}
	j := res.Judge()
	if j.Result != kafkaload.Failed || len(j.Reasons) != 1 || !strings.Contains(j.Reasons[0], "kafka_consumed count>1000") {
		t.Errorf("judgement %s %q, want failed on kafka_consumed alone", j.Result, j.Reasons)
	}
	var sum bytes.Buffer
	if err := res.WriteSummary(&sum, j); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"300 acknowledged", "300 read back, 0 unconsumed", "partition 2", "end to end", "FAIL  kafka_consumed count>1000", "result: failed"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Schema   string `json:"schema"`
		Result   string `json:"result"`
		Consumed int64  `json:"consumed"`
		ByPart   map[string]json.RawMessage
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.Schema != kafkaload.ResultSchema || doc.Result != "failed" || doc.Consumed != 300 {
		t.Errorf("json: %v %+v", err, doc)
	}
}

func TestJudgeGeneratorFirst(t *testing.T) {
	t.Parallel()
	th := thresholds(t, "kafka_e2e_duration:p(99)<1")
	res := &kafkaload.Result{Dispatched: 100, OnTime: 50, MinOnTime: 0.9, LateAfter: 10 * time.Millisecond, Thresholds: th,
		Produce: new(outcome.Recorder), E2E: new(outcome.Recorder), ScheduleLag: new(outcome.Recorder)}
	// A run that sent half its records late is not judged.
	j := res.Judge()
	if j.Result != kafkaload.Inconclusive || !strings.Contains(j.Reasons[0], "50 of 100 records late") {
		t.Errorf("judgement %s %q", j.Result, j.Reasons)
	}
	res.OnTime = 95
	if j := res.Judge(); j.Result != kafkaload.Passed { // the threshold had no data
		t.Errorf("on time: %s %q", j.Result, j.Reasons)
	}
}

func TestBadThresholds(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"http_req_duration:p(99)<1", "kafka_e2e_duration:rate<1", "kafka_consumer_lag:p(99)<1"} {
		if _, err := load.ParseThresholdFlagIn(kafkaload.Metrics, s); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	th := thresholds(t, "kafka_e2e_duration:p(99)<1")
	th[0].Window = time.Second
	_, err := kafkaload.Run(context.Background(), kafkaload.Options{Brokers: []string{"127.0.0.1:1"}, Topic: "t",
		Schedule: schedule(t, 1, time.Second), Thresholds: th})
	if err == nil || !strings.Contains(err.Error(), "windows") {
		t.Errorf("windowed threshold: %v", err)
	}
}

// TestFaultsMoveLatencyAndLag puts relia's fault proxy between the
// consumer and the broker (the producer goes straight to it): latency on
// the consumer's path shows in every record's end-to-end latency, and a
// partition of the consumer from the broker makes its lag grow while the
// producer goes on, then fall back to nothing once the path heals.
func TestFaultsMoveLatencyAndLag(t *testing.T) {
	t.Parallel()
	addr := broker(t)
	srv, err := fault.NewServer(fault.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	px, err := srv.CreateProxy(fault.ProxyConfig{Name: "kafka", Listen: "127.0.0.1:0", Upstream: addr})
	if err != nil {
		t.Fatal(err)
	}
	// Every broker the consumer is told of is reached through the proxy.
	viaProxy := func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, px.Listen)
	}
	opts := func(topic string, d time.Duration) kafkaload.Options {
		return kafkaload.Options{Brokers: []string{addr}, Topic: topic, Partitions: 2, Schedule: schedule(t, 100, d),
			ConsumerDial: viaProxy, Drain: 20 * time.Second}
	}

	// The broker's first topic and the clients' first connections are
	// slow on a busy machine; a short run gets them over with.
	run(t, opts("warm-up", 200*time.Millisecond))
	base := run(t, opts("base", 1500*time.Millisecond))
	baseLag, _, _ := base.MaxLag(-1)

	// 300 ms on every byte the broker sends the consumer.
	if _, err := srv.AddToxic("kafka", strings.NewReader(`{"name":"slow","type":"latency","stream":"downstream","attributes":{"latency":300}}`)); err != nil {
		t.Fatal(err)
	}
	slow := run(t, opts("slow", 1500*time.Millisecond))
	if err := srv.RemoveToxic("kafka", "slow"); err != nil {
		t.Fatal(err)
	}
	if min := slow.E2E.Total().Latency.Min(); min < 300*time.Millisecond {
		t.Errorf("with 300ms on the consumer's path the fastest record took %s end to end", min)
	}
	if b := base.E2E.Total().Latency.Min(); b >= 300*time.Millisecond {
		t.Errorf("without the fault the fastest record took %s end to end; the comparison says nothing", b)
	}
	if slow.Consumed != slow.Acked {
		t.Errorf("slow path: %d of %d records read back", slow.Consumed, slow.Acked)
	}

	// The consumer is cut off from the broker for the second second of
	// three seconds of production.
	o := opts("partition", 3*time.Second)
	o.Progress = func(p kafkaload.Progress) {
		switch p.Elapsed {
		case time.Second:
			_, _ = srv.UpdateProxy("kafka", px.Listen, addr, false)
		case 2 * time.Second:
			_, _ = srv.UpdateProxy("kafka", px.Listen, addr, true)
		}
	}
	part := run(t, o)
	partLag, _, _ := part.MaxLag(-1)
	if partLag < 50 || partLag <= baseLag {
		t.Errorf("max consumer lag %d during the partition, %d without it: want it to grow by the records produced meanwhile", partLag, baseLag)
	}
	for _, s := range part.FinalLag {
		if s.Lag != 0 {
			t.Errorf("partition %d: lag %d after the path healed, want 0", s.Partition, s.Lag)
		}
	}
	if part.Consumed != part.Acked || part.Unconsumed != 0 {
		t.Errorf("after healing: %d of %d read back, %d unconsumed", part.Consumed, part.Acked, part.Unconsumed)
	}
	if w := part.E2E.Total().Latency.Max(); w < 500*time.Millisecond {
		t.Errorf("the longest end-to-end latency %s does not show the records that waited out the partition", w)
	}
}
