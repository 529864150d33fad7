package callstore

import (
	"encoding/json"
	"time"
)

// recordJSON is a Record's JSON form: durations as integer nanoseconds
// with the unit in the key, as the rest of relia's JSON writes them.
type recordJSON struct {
	recordFields
	LatencyNS         int64 `json:"latency_ns"`
	UpstreamLatencyNS int64 `json:"upstream_latency_ns"`
	GatewayLatencyNS  int64 `json:"gateway_latency_ns"`
	TTFBNS            int64 `json:"ttfb_ns"`
}

// recordFields is Record without its methods, so that encoding/json
// does not call Record's MarshalJSON on it again.
type recordFields Record

// MarshalJSON writes the record with snake_case keys and its latencies
// as latency_ns, upstream_latency_ns, gateway_latency_ns and ttfb_ns.
func (r Record) MarshalJSON() ([]byte, error) {
	r.Time = r.Time.UTC()
	return json.Marshal(recordJSON{
		recordFields:      recordFields(r),
		LatencyNS:         int64(r.Latency),
		UpstreamLatencyNS: int64(r.Upstream),
		GatewayLatencyNS:  int64(r.GatewayLatency()),
		TTFBNS:            int64(r.TTFB),
	})
}

// UnmarshalJSON reads what MarshalJSON writes (gateway_latency_ns, being
// derived, is ignored).
func (r *Record) UnmarshalJSON(b []byte) error {
	var j recordJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Record(j.recordFields)
	r.Latency, r.Upstream, r.TTFB = time.Duration(j.LatencyNS), time.Duration(j.UpstreamLatencyNS), time.Duration(j.TTFBNS)
	return nil
}

type stepJSON struct {
	stepFields
	LatencyNS int64 `json:"latency_ns"`
}

type stepFields Step

// MarshalJSON writes the step with its latency as latency_ns.
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepJSON{stepFields: stepFields(s), LatencyNS: int64(s.Latency)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Step) UnmarshalJSON(b []byte) error {
	var j stepJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Step(j.stepFields)
	s.Latency = time.Duration(j.LatencyNS)
	return nil
}
