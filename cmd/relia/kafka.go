package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/relia-dev/relia/kafkaload"
	"github.com/relia-dev/relia/load"
)

func init() { register(newKafkaCmd) }

func newKafkaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Kafka load: produce on schedule, read back with end-to-end latency and consumer lag",
	}
	cmd.AddCommand(newKafkaLoadCmd(), newKafkaFakeCmd())
	return cmd
}

// kafkaFlags are relia kafka load's flags.
type kafkaFlags struct {
	brokers     string
	topic       string
	rate        float64
	duration    time.Duration
	partitions  int32
	size        int
	acks        string
	maxInFlight int
	drain       time.Duration
	noConsume   bool
	lateAfter   time.Duration
	minOnTime   float64
	thresholds  []string
	out         string
	format      string
}

func newKafkaLoadCmd() *cobra.Command {
	var f kafkaFlags
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Produce records at a rate and read them back, measuring end-to-end latency and consumer lag",
		Long: `relia kafka load produces records to a topic on an arrival schedule (the
open model: --rate records per second whatever the brokers do, and latency
from each record's due time), while a consumer reads them back and measures
each record's end-to-end latency and its own lag, per partition, every
second. A topic that does not exist is created with --partitions.

  relia kafka load --brokers 127.0.0.1:9092 --topic orders --rate 1000 --duration 30s \
      --threshold 'kafka_e2e_duration:p(99)<250' --threshold 'kafka_unconsumed:count==0'

Metrics for thresholds: kafka_produce_duration, kafka_produce_failed,
kafka_e2e_duration, kafka_consumer_lag, kafka_produced, kafka_consumed,
kafka_unconsumed, schedule_lag, dropped_iterations; all but the last three
split by {partition:N}.

Exit codes: 0 every threshold passed, 1 a threshold failed, 2 bad input,
3 interrupted, 4 runtime error (no broker), 5 inconclusive (relia could not
keep its own schedule, so the brokers were not judged).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runKafkaLoad(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.brokers, "brokers", "127.0.0.1:9092", "seed brokers, comma-separated host:port")
	fl.StringVar(&f.topic, "topic", "relia-load", "topic to produce to and read back")
	fl.Float64Var(&f.rate, "rate", 100, "records per second")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long to produce")
	fl.Int32Var(&f.partitions, "partitions", kafkaload.DefaultPartitions, "partitions of a topic relia creates")
	fl.IntVar(&f.size, "message-size", kafkaload.DefaultMessageSize, "bytes in each record's value")
	fl.StringVar(&f.acks, "acks", "all", "acknowledgement to wait for: all, leader or none")
	fl.IntVar(&f.maxInFlight, "max-in-flight", kafkaload.DefaultMaxInFlight, "cap on records not yet acknowledged; arrivals beyond it are dropped and counted")
	fl.DurationVar(&f.drain, "drain", kafkaload.DefaultDrain, "how long the consumer may take to catch up after the last record")
	fl.BoolVar(&f.noConsume, "no-consume", false, "produce only")
	fl.DurationVar(&f.lateAfter, "late-after", load.DefaultLateAfter, "how late a record may be sent and still count as on time")
	fl.Float64Var(&f.minOnTime, "min-on-time", load.DefaultMinOnTime, "share of records that must be sent on time for the run to be judged; 0 turns the check off")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "threshold 'metric:expression', e.g. 'kafka_e2e_duration:p(99)<250' (repeatable)")
	fl.StringVar(&f.out, "out", "", "write the results (relia/kafka/v1 JSON) to this file")
	fl.StringVarP(&f.format, "output", "o", "table", "stdout format: table or json")
	return cmd
}

func runKafkaLoad(cmd *cobra.Command, f *kafkaFlags) error {
	if f.format != "table" && f.format != "json" {
		return badInput(fmt.Errorf("-o %q: want table or json", f.format))
	}
	sched, err := load.ConstantSchedule(f.rate, f.duration)
	if err != nil {
		return badInput(fmt.Errorf("--rate %v --duration %s: %w", f.rate, f.duration, err))
	}
	o := kafkaload.Options{Brokers: kafkaload.ParseBrokers(f.brokers), Topic: f.topic, Partitions: f.partitions,
		Schedule: sched, MaxInFlight: f.maxInFlight, MessageSize: f.size, Acks: f.acks, NoConsume: f.noConsume, Drain: f.drain,
		LateAfter: f.lateAfter, MinOnTime: f.minOnTime}
	if f.minOnTime == 0 {
		o.MinOnTime = -1 // off
	}
	if f.minOnTime < 0 || f.minOnTime > 1 {
		return badInput(fmt.Errorf("--min-on-time %v: want a share from 0 to 1", f.minOnTime))
	}
	for _, s := range f.thresholds {
		th, err := load.ParseThresholdFlagIn(kafkaload.Metrics, s)
		if err != nil {
			return badInput(fmt.Errorf("--threshold: %w", err))
		}
		o.Thresholds = append(o.Thresholds, th)
	}
	if err := checkKafkaOptions(&o); err != nil {
		return badInput(err)
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stderr := cmd.ErrOrStderr()
	o.Progress = func(p kafkaload.Progress) {
		fmt.Fprintf(stderr, "relia kafka load: %s/%s  %d acknowledged, %d read back, lag %d\n",
			p.Elapsed.Round(time.Second), p.Duration.Round(time.Second), p.Acked, p.Consumed, p.Lag)
	}
	res, err := kafkaload.Run(ctx, o)
	if err != nil {
		return runtimeErr(err)
	}
	data, err := resultJSON(res, f.out)
	if err != nil {
		return err
	}
	j := res.Judge()
	if f.format == "json" {
		if _, err := cmd.OutOrStdout().Write(append(data, '\n')); err != nil {
			return runtimeErr(err)
		}
	} else if err := res.WriteSummary(cmd.OutOrStdout(), j); err != nil {
		return runtimeErr(err)
	}
	if err := verdictErr(j.Result, j.Reasons); err != nil {
		return err
	}
	if res.Stopped == "interrupted" {
		return &exitError{code: exitAborted, err: errors.New("interrupted before the end of the schedule")}
	}
	return nil
}

// checkKafkaOptions checks what can be checked before connecting.
func checkKafkaOptions(o *kafkaload.Options) error {
	if len(o.Brokers) == 0 {
		return errors.New("--brokers: give at least one host:port")
	}
	for _, b := range o.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("--brokers: %q: want host:port", b)
		}
	}
	switch {
	case o.Topic == "":
		return errors.New("--topic: give a topic")
	case o.Partitions < 1:
		return fmt.Errorf("--partitions %d: want at least 1", o.Partitions)
	case o.MessageSize < 1:
		return fmt.Errorf("--message-size %d: want at least 1 byte", o.MessageSize)
	case o.MaxInFlight < 1:
		return fmt.Errorf("--max-in-flight %d: want at least 1", o.MaxInFlight)
	case o.Drain < 0:
		return fmt.Errorf("--drain %s is negative", o.Drain)
	case o.LateAfter <= 0:
		return fmt.Errorf("--late-after %s: want a duration above 0", o.LateAfter)
	}
	switch o.Acks {
	case "all", "leader", "none":
	default:
		return fmt.Errorf("--acks %q: want all, leader or none", o.Acks)
	}
	return nil
}

func newKafkaFakeCmd() *cobra.Command {
	var (
		addr       string
		partitions int32
	)
	cmd := &cobra.Command{
		Use:   "fake",
		Short: "Serve an in-memory Kafka broker to try relia kafka load on (not for keeping data)",
		Long: `relia kafka fake serves a single in-memory Kafka broker (franz-go's kfake,
which speaks the Kafka wire protocol) until it is interrupted, so that
relia kafka load and the docs' examples run without a cluster. Topics are
created on first use with --partitions partitions. Nothing is kept: it is a
target for trying things, not a broker to rely on.

  relia kafka fake --addr 127.0.0.1:9092 &
  relia kafka load --brokers 127.0.0.1:9092 --rate 200 --duration 5s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return badInput(fmt.Errorf("--addr %q: want host:port", addr))
			}
			if partitions < 1 {
				return badInput(fmt.Errorf("--partitions %d: want at least 1", partitions))
			}
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(int(partitions)),
				kfake.ListenFn(func(network, _ string) (net.Listener, error) {
					return net.Listen(network, net.JoinHostPort(host, port))
				}))
			if err != nil {
				return runtimeErr(fmt.Errorf("starting the broker on %s: %w", addr, err))
			}
			defer c.Close()
			fmt.Fprintf(cmd.ErrOrStderr(), "relia kafka fake: an in-memory broker on %s\n", c.ListenAddrs()[0])
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9092", "address to serve the broker on")
	cmd.Flags().Int32Var(&partitions, "partitions", kafkaload.DefaultPartitions, "partitions of topics created on first use")
	return cmd
}
