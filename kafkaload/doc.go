// Package kafkaload is relia's Kafka load test: records produced to a
// topic on an arrival schedule (the open model, load.Schedule and
// load.OpenExecutor, so a stalling broker cannot slow the offered load
// down), read back by a consumer that measures each record's end-to-end
// latency from the time it was due (carried in the record's relia-due
// header) and follows its lag partition by partition, every second.
// Thresholds use k6's syntax over the package's own Metrics.
//
//	sched, _ := load.ConstantSchedule(1000, 30*time.Second)
//	th, _ := load.ParseThresholdIn(kafkaload.Metrics, "kafka_e2e_duration", "p(99)<250")
//	res, err := kafkaload.Run(ctx, kafkaload.Options{
//		Brokers: []string{"127.0.0.1:9092"}, Topic: "orders",
//		Schedule: sched, Thresholds: []load.Threshold{th},
//	})
//	j := res.Judge() // passed, failed or inconclusive, with reasons
//	res.WriteSummary(os.Stdout, j)
//
// The consumer reads every partition from where it ended when the run
// started, without a consumer group, so the lag it reports is its own:
// the newest end offset known (from the producer's acknowledgements or
// the brokers' high watermarks) less the next offset it reads.
package kafkaload
