package kafkaload

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
)

// Metrics are the figures a Kafka load test's thresholds may name, in
// k6's syntax ("kafka_e2e_duration: p(99)<250", "kafka_consumer_lag:
// value<1000"). Trends are in milliseconds. Every metric but
// schedule_lag, dropped_iterations and kafka_unconsumed may be split by
// partition: "kafka_e2e_duration{partition:0}".
var Metrics = map[string]load.MetricKind{
	// Produce latency: from the record's due time to the broker's
	// acknowledgement (the open model's honest latency: a broker that
	// stalls delays every record due during the stall).
	"kafka_produce_duration": load.Trend,
	// Share of produced records that failed (a broker error, a timeout, a
	// broken connection); dropped arrivals are not produced.
	"kafka_produce_failed": load.Rate,
	// End-to-end latency: from the record's due time to the moment the
	// consumer read it.
	"kafka_e2e_duration": load.Trend,
	// Consumer lag: records written to a partition and not yet read,
	// sampled every second; value is the highest sample.
	"kafka_consumer_lag": load.Gauge,
	// Records acknowledged, and records of the run read back; count or
	// per-second rate.
	"kafka_produced": load.Counter,
	"kafka_consumed": load.Counter,
	// Records acknowledged that the consumer had not read when the drain
	// ended: lost, or too slow to count.
	"kafka_unconsumed": load.Counter,
	// How late records were sent against their schedule, and arrivals
	// dropped at the in-flight cap.
	"schedule_lag":       load.Trend,
	"dropped_iterations": load.Counter,
}

// LagSample is one partition's consumer lag at a whole second.
type LagSample struct {
	T         time.Time `json:"t"`
	Partition int32     `json:"partition"`
	Lag       int64     `json:"lag"`
}

// Result is what a Kafka load test measured.
type Result struct {
	Topic   string
	Brokers []string
	// Partitions are the topic's partitions.
	Partitions []int32
	// Start and End are when production started and ended; Duration is
	// the schedule's planned length.
	Start, End time.Time
	Duration   time.Duration
	// Planned is how many records were due; Dispatched and Dropped how
	// many were produced and dropped at the in-flight cap.
	Planned, Dispatched, Dropped uint64
	// Acked counts acknowledged records, Consumed the run's records read
	// back, Unconsumed those acknowledged and not read when the drain
	// ended. OnTime counts records sent within LateAfter of their due
	// time.
	Acked, Consumed, Unconsumed, OnTime int64
	LateAfter                           time.Duration
	MinOnTime                           float64
	// Produce holds every record's produce outcome (latency from its due
	// time to its acknowledgement; dropped arrivals as ClassDropped);
	// ProduceByPartition the same per partition.
	Produce            *outcome.Recorder
	ProduceByPartition map[int32]*outcome.Recorder
	// E2E holds every record read back, its latency from its due time to
	// its reading; E2EByPartition the same per partition.
	E2E            *outcome.Recorder
	E2EByPartition map[int32]*outcome.Recorder
	// ScheduleLag holds how late each record was sent.
	ScheduleLag *outcome.Recorder
	// ConsumerLag is every partition's lag, each second, in time order.
	ConsumerLag []LagSample
	// FinalLag is every partition's lag when the run ended.
	FinalLag   []LagSample
	Thresholds []load.Threshold
	// Stopped says why production ended before its schedule did.
	Stopped string
}

func newRecorder() *outcome.Recorder {
	r, _ := outcome.NewRecorder(outcome.Options{}) // the defaults are valid
	return r
}

func newResult(o Options, start map[int32]int64) *Result {
	r := &Result{Topic: o.Topic, Brokers: o.Brokers, Duration: o.Schedule.Duration(), Planned: o.Schedule.Total(),
		LateAfter: o.LateAfter, MinOnTime: o.MinOnTime, Thresholds: o.Thresholds,
		Produce: newRecorder(), ProduceByPartition: map[int32]*outcome.Recorder{},
		E2E: newRecorder(), E2EByPartition: map[int32]*outcome.Recorder{}, ScheduleLag: newRecorder()}
	for p := range start {
		r.Partitions = append(r.Partitions, p)
		r.ProduceByPartition[p] = newRecorder()
		r.E2EByPartition[p] = newRecorder()
	}
	slices.Sort(r.Partitions)
	return r
}

func (r *Result) addLags(at time.Time, lags []LagSample) {
	r.ConsumerLag = append(r.ConsumerLag, lags...)
}

func (r *Result) lastLag(lags []LagSample) { r.FinalLag = lags }

// MaxLag is the highest lag sampled, on the partition given or on any
// (partition < 0), and when it was seen.
func (r *Result) MaxLag(partition int32) (lag int64, at time.Time, ok bool) {
	for _, s := range append(slices.Clone(r.ConsumerLag), r.FinalLag...) {
		if partition >= 0 && s.Partition != partition {
			continue
		}
		if !ok || s.Lag > lag {
			lag, at, ok = s.Lag, s.T, true
		}
	}
	return lag, at, ok
}

// Evaluate judges every threshold over the whole run.
func (r *Result) Evaluate() []load.ThresholdResult {
	return load.EvaluateThresholds(r.Thresholds, r.value)
}

// value computes a threshold's metric over the run.
func (r *Result) value(th load.Threshold) (float64, bool) {
	produce, e2e, part := r.Produce, r.E2E, int32(-1)
	if ps, split := th.Tags["partition"]; split {
		n, err := strconv.ParseInt(ps, 10, 32)
		if err != nil || r.ProduceByPartition[int32(n)] == nil {
			return 0, false
		}
		part = int32(n)
		produce, e2e = r.ProduceByPartition[part], r.E2EByPartition[part]
	}
	secs := r.End.Sub(r.Start).Seconds()
	counter := func(n int64) (float64, bool) {
		if th.Aggregation == "rate" {
			if secs <= 0 {
				return 0, false
			}
			return float64(n) / secs, true
		}
		return float64(n), true
	}
	trend := func(h *outcome.Histogram) (float64, bool) {
		if h.Count() == 0 {
			return 0, false
		}
		return float64(th.Trend(h)) / float64(time.Millisecond), true
	}
	switch th.Metric {
	case "kafka_produce_duration":
		return trend(produce.Total().Latency)
	case "kafka_e2e_duration":
		return trend(e2e.Total().Latency)
	case "schedule_lag":
		return trend(r.ScheduleLag.Total().Latency)
	case "kafka_produce_failed":
		sum := produce.Total()
		sent := sum.Total - sum.ByClass[outcome.ClassDropped]
		if sent == 0 {
			return 0, false
		}
		return float64(sent-sum.ByClass[outcome.ClassOK]) / float64(sent), true
	case "kafka_consumer_lag":
		lag, _, ok := r.MaxLag(part)
		return float64(lag), ok
	case "kafka_produced":
		return counter(produce.Total().ByClass[outcome.ClassOK])
	case "kafka_consumed":
		return counter(e2e.Total().Total)
	case "kafka_unconsumed":
		return counter(r.Unconsumed)
	case "dropped_iterations":
		return counter(r.Produce.Total().ByClass[outcome.ClassDropped])
	}
	return 0, false
}

// The results of a judgement, load's.
const (
	Passed       = load.Passed
	Failed       = load.Failed
	Inconclusive = load.Inconclusive
)

// Judgement is a run's result, with why.
type Judgement struct {
	Result     string
	Thresholds []load.ThresholdResult
	Reasons    []string
}

// Judge judges the run: the generator first (a run that sent more than
// 1-MinOnTime of its records later than LateAfter, or dropped them, and
// at least ten, did not offer the load it was asked to, so its figures
// are reported, not judged), then the thresholds.
func (r *Result) Judge() Judgement {
	j := Judgement{Result: Passed, Thresholds: r.Evaluate()}
	var failed []string
	for _, tr := range j.Thresholds {
		if !tr.Passed {
			failed = append(failed, fmt.Sprintf("threshold %s failed: %s", tr, load.FormatValueIn(Metrics, tr.Threshold, tr.Value)))
		}
	}
	sent := int64(r.Dispatched + r.Dropped)
	late := sent - r.OnTime
	if r.MinOnTime > 0 && sent > 0 && late >= load.MinLateToJudge && float64(r.OnTime)/float64(sent) < r.MinOnTime {
		j.Result = Inconclusive
		j.Reasons = append(j.Reasons, fmt.Sprintf("the generator sent %d of %d records late (over %s) or dropped them: it did not offer the planned load, so the broker is not judged",
			late, sent, r.LateAfter))
		for _, f := range failed {
			j.Reasons = append(j.Reasons, "not judged: "+f)
		}
		return j
	}
	if len(failed) > 0 {
		j.Result, j.Reasons = Failed, failed
	}
	return j
}

// WriteSummary writes the run's summary: records produced and read back,
// produce and end-to-end latency overall and per partition, consumer lag,
// the generator's punctuality and the judgement.
func (r *Result) WriteSummary(w io.Writer, j Judgement) error {
	var b strings.Builder
	fmt.Fprintf(&b, "kafka topic %s: %d partitions, ran %s of %s\n", r.Topic, len(r.Partitions),
		ms(r.End.Sub(r.Start)), r.Duration)
	if r.Stopped != "" {
		fmt.Fprintf(&b, "stopped early: %s\n", r.Stopped)
	}
	prod := r.Produce.Total()
	failed := prod.Total - prod.ByClass[outcome.ClassOK] - prod.ByClass[outcome.ClassDropped]
	fmt.Fprintf(&b, "records: %d planned, %d produced, %d acknowledged, %d failed, %d dropped; %d read back, %d unconsumed\n\n",
		r.Planned, r.Dispatched, r.Acked, failed, r.Dropped, r.Consumed, r.Unconsumed)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "latency from schedule\trecords\tp50\tp90\tp99\tmax\t\n")
	line := func(name string, sum outcome.Summary) {
		h := sum.Latency
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", name, h.Count(), ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)), ms(h.Max()))
	}
	line("produce (acknowledged)", prod)
	for _, p := range r.Partitions {
		line(fmt.Sprintf("  partition %d", p), r.ProduceByPartition[p].Total())
	}
	line("end to end (read back)", r.E2E.Total())
	for _, p := range r.Partitions {
		line(fmt.Sprintf("  partition %d", p), r.E2EByPartition[p].Total())
	}
	line("schedule lag", r.ScheduleLag.Total())
	if err := tw.Flush(); err != nil {
		return err
	}
	if lag, at, ok := r.MaxLag(-1); ok {
		fmt.Fprintf(&b, "\nconsumer lag: max %d records at %s;", lag, ms(at.Sub(r.Start)))
		for _, p := range r.Partitions {
			l, _, _ := r.MaxLag(p)
			fmt.Fprintf(&b, " partition %d max %d", p, l)
		}
		var final int64
		for _, s := range r.FinalLag {
			final += s.Lag
		}
		fmt.Fprintf(&b, "; at the end %d\n", final)
	}
	if errs := classCounts(prod); errs != "" {
		fmt.Fprintf(&b, "produce errors: %s\n", errs)
	}
	load.WriteThresholds(&b, j.Thresholds, func(th load.Threshold, v float64) string { return load.FormatValueIn(Metrics, th, v) })
	fmt.Fprintf(&b, "result: %s\n", j.Result)
	for _, reason := range j.Reasons {
		fmt.Fprintf(&b, "  %s\n", reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func classCounts(sum outcome.Summary) string {
	var parts []string
	for c, n := range sum.ByClass {
		if n > 0 && outcome.Class(c) != outcome.ClassOK && outcome.Class(c) != outcome.ClassDropped {
			parts = append(parts, fmt.Sprintf("%s %d", outcome.Class(c), n))
		}
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return outcome.FormatDuration(d) }

// ResultSchema is the "schema" of a Kafka load results file.
const ResultSchema = "relia/kafka/v1"

type resultJSON struct {
	Schema             string                       `json:"schema"`
	Topic              string                       `json:"topic"`
	Brokers            []string                     `json:"brokers"`
	Partitions         []int32                      `json:"partitions"`
	Start              time.Time                    `json:"start"`
	End                time.Time                    `json:"end"`
	DurationNS         int64                        `json:"duration_ns"`
	Planned            uint64                       `json:"planned"`
	Dispatched         uint64                       `json:"dispatched"`
	Dropped            uint64                       `json:"dropped"`
	Acked              int64                        `json:"acked"`
	Consumed           int64                        `json:"consumed"`
	Unconsumed         int64                        `json:"unconsumed"`
	OnTime             int64                        `json:"on_time"`
	LateAfterNS        int64                        `json:"late_after_ns"`
	Result             string                       `json:"result"`
	Reasons            []string                     `json:"reasons"`
	Thresholds         []thresholdJSON              `json:"thresholds"`
	Produce            *outcome.Recorder            `json:"produce"`
	ProduceByPartition map[string]*outcome.Recorder `json:"produce_by_partition"`
	E2E                *outcome.Recorder            `json:"e2e"`
	E2EByPartition     map[string]*outcome.Recorder `json:"e2e_by_partition"`
	ScheduleLag        *outcome.Recorder            `json:"schedule_lag"`
	ConsumerLag        []LagSample                  `json:"consumer_lag"`
	FinalLag           []LagSample                  `json:"final_lag"`
	Stopped            string                       `json:"stopped,omitempty"`
}

type thresholdJSON struct {
	Threshold string  `json:"threshold"`
	Value     float64 `json:"value"`
	NoData    bool    `json:"no_data,omitempty"`
	Passed    bool    `json:"passed"`
}

// MarshalJSON writes the result in the relia/kafka/v1 schema, with its
// judgement; recorders are in relia/outcome/v1.
func (r *Result) MarshalJSON() ([]byte, error) {
	j := r.Judge()
	doc := resultJSON{Schema: ResultSchema, Topic: r.Topic, Brokers: r.Brokers, Partitions: r.Partitions,
		Start: r.Start, End: r.End, DurationNS: int64(r.Duration), Planned: r.Planned, Dispatched: r.Dispatched,
		Dropped: r.Dropped, Acked: r.Acked, Consumed: r.Consumed, Unconsumed: r.Unconsumed, OnTime: r.OnTime,
		LateAfterNS: int64(r.LateAfter), Result: j.Result, Reasons: j.Reasons, Thresholds: []thresholdJSON{},
		Produce: r.Produce, E2E: r.E2E, ScheduleLag: r.ScheduleLag, ConsumerLag: r.ConsumerLag, FinalLag: r.FinalLag,
		ProduceByPartition: map[string]*outcome.Recorder{}, E2EByPartition: map[string]*outcome.Recorder{}, Stopped: r.Stopped}
	if doc.Reasons == nil {
		doc.Reasons = []string{}
	}
	if doc.ConsumerLag == nil {
		doc.ConsumerLag = []LagSample{}
	}
	for _, p := range slices.Sorted(maps.Keys(r.ProduceByPartition)) {
		doc.ProduceByPartition[strconv.Itoa(int(p))] = r.ProduceByPartition[p]
		doc.E2EByPartition[strconv.Itoa(int(p))] = r.E2EByPartition[p]
	}
	for _, tr := range j.Thresholds {
		doc.Thresholds = append(doc.Thresholds, thresholdJSON{Threshold: tr.String(), Value: tr.Value, NoData: tr.NoData, Passed: tr.Passed})
	}
	return json.Marshal(doc)
}
