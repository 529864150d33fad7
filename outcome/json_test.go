package outcome

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		opts     Options
		outcomes []Outcome
	}{
		{"empty", Options{}, nil},
		{"mixed", Options{}, mixedOutcomes(5000, 20, 2)},
		{"past the logs", Options{}, mixedOutcomes(20_000, 2, 4)},
		{"other options", Options{BucketWidth: 250 * time.Millisecond, MaxLatency: 10 * time.Second}, mixedOutcomes(3000, 5, 6)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRecorder(t, tt.opts)
			for _, o := range tt.outcomes {
				r.Record(o)
			}
			// Load result files embed the recorder.
			type result struct {
				Name     string    `json:"name"`
				Recorder *Recorder `json:"recorder"`
			}
			data, err := json.Marshal(result{Name: "checkout", Recorder: r})
			if err != nil {
				t.Fatal(err)
			}
			var back result
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			sameRecorders(t, back.Recorder, r)
			again, err := json.Marshal(result{Name: "checkout", Recorder: back.Recorder})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, data) {
				t.Error("encoding the decoded recorder gives different JSON")
			}
		})
	}
}

// validDoc is a well-formed serialised recorder that the error cases
// below break one field at a time.
const validDoc = `{"schema":"relia/outcome/v1","bucket_width_ns":1000000000,"max_latency_ns":60000000000,
"lowest_discernible_ns":1000,"significant_digits":3,"status_codes":{"200":2,"503":1},
"buckets":[{"start":"2023-11-14T22:13:20Z","classes":{"ok":2,"status":1,"dropped":1},"status_classes":[1,0,2,0,0,1],
"bytes_in":300,"bytes_out":40,"latency":[[12000,2],[250112,1]],"service_time":[[11000,1],[12000,1],[250112,1]]},
{"start":"2023-11-14T22:13:21Z","classes":{"timeout":1},"status_classes":[1,0,0,0,0,0],"clamped":1,"latency":[[59998208,1]]}]}`

func TestUnmarshalJSON(t *testing.T) {
	t.Parallel()
	var r Recorder
	if err := json.Unmarshal([]byte(validDoc), &r); err != nil {
		t.Fatal(err)
	}
	s := r.Total()
	if s.Total != 5 || s.ByClass[ClassDropped] != 1 || s.Latency.Count() != 4 || s.Clamped != 1 {
		t.Errorf("decoded total %d, dropped %d, latencies %d, clamped %d; want 5, 1, 4, 1",
			s.Total, s.ByClass[ClassDropped], s.Latency.Count(), s.Clamped)
	}
	if got := s.ServiceTime.Min(); got != 11*time.Millisecond {
		t.Errorf("service time min %v, want 11ms", got)
	}
	if got := r.StatusCodes(); got[200] != 2 || got[503] != 1 {
		t.Errorf("status codes %v", got)
	}
	if first, last, _ := r.Span(); !first.Equal(time.Unix(1_700_000_000, 0)) || last.Sub(first) != time.Second {
		t.Errorf("span %s..%s", first, last)
	}
}

func TestUnmarshalJSONErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, from, to, want string
	}{
		{"other schema", `"relia/outcome/v1"`, `"relia/outcome/v2"`, `schema "relia/outcome/v2" is not`},
		{"unknown field", `"significant_digits":3,`, `"significant_digits":3,"extra":1,`, `unknown field "extra"`},
		{"other layout", `"significant_digits":3`, `"significant_digits":2`, "histogram layout"},
		{"zero width", `"bucket_width_ns":1000000000`, `"bucket_width_ns":0`, "must be positive"},
		{"tiny width", `"bucket_width_ns":1000000000`, `"bucket_width_ns":1000`, "below 1ms"},
		{"bad status code", `"503":1`, `"703":1`, "status_codes: 703"},
		{"negative status count", `"503":1`, `"503":-1`, "status_codes: 503"},
		{"unaligned start", `22:13:21Z`, `22:13:21.5Z`, "not on a 1s boundary"},
		{"buckets out of order", `22:13:21Z`, `22:13:19Z`, "not after the previous bucket"},
		{"missing start", `"start":"2023-11-14T22:13:21Z",`, ``, "start 0001-01-01"},
		{"unknown class", `"timeout":1`, `"slow":1`, `unknown outcome class "slow"`},
		{"negative class count", `"timeout":1`, `"timeout":-1`, "classes: timeout: count -1"},
		{"negative status class count", `[1,0,0,0,0,0]`, `[-1,0,0,0,0,0]`, "status_classes[0]"},
		{"long status classes", `[1,0,0,0,0,0]`, `[1,0,0,0,0,0,0]`, "status_classes has 7 counts, want 6"},
		{"missing status classes", `,"status_classes":[1,0,0,0,0,0]`, ``, "status_classes has 0 counts"},
		{"negative bytes", `"bytes_in":300`, `"bytes_in":-300`, "must not be negative"},
		{"not a cell boundary", `[250112,1]]}`, `[250113,1]]}`, "250113us is not the lowest value of a cell (250112us is)"},
		{"cells out of order", `[[11000,1],[12000,1]`, `[[12000,1],[11000,1]`, "does not come after"},
		{"cell above max latency", `[59998208,1]`, `[60030976,1]`, "above max latency 1m0s"},
		{"cell not a pair", `[12000,2]`, `[12000,2,7]`, "not a pair"},
		{"negative cell count", `[12000,2]`, `[12000,-2]`, "json"},
		{"huge cell count", `[12000,2]`, `[12000,9223372036854775808]`, "above 2^63-1"},
		{"trailing data", `}]}`, `}]}{}`, "data after the recorder"},
		{"not an object", validDoc, `[]`, "json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := strings.Replace(validDoc, tt.from, tt.to, 1)
			if doc == validDoc {
				t.Fatalf("%q is not in the document", tt.from)
			}
			var r Recorder
			err := r.UnmarshalJSON([]byte(doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "decoding outcome recorder: ") {
				t.Errorf("error %q does not say what was being decoded", err)
			}
			if r.Total().Total != 0 {
				t.Error("a failed decode changed the recorder")
			}
		})
	}
}

func FuzzUnmarshalJSON(f *testing.F) {
	f.Add([]byte(validDoc))
	f.Add([]byte(`{"schema":"relia/outcome/v1","bucket_width_ns":1000000,"max_latency_ns":1000,"lowest_discernible_ns":1000,"significant_digits":3,"status_codes":{},"buckets":[]}`))
	f.Add([]byte(`{"schema":"relia/outcome/v1","buckets":[{"start":"1677-09-21T00:12:43Z","latency":[[18446744073709551615,1]]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Recorder
		if err := r.UnmarshalJSON(data); err != nil {
			if !strings.HasPrefix(err.Error(), "decoding outcome recorder: ") {
				t.Fatalf("error %q does not say what was being decoded", err)
			}
			return
		}
		// Whatever decodes encodes, and decodes to the same thing.
		enc, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Recorder
		if err := back.UnmarshalJSON(enc); err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		again, err := back.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, again) {
			t.Fatalf("encodings differ:\n%s\n%s", enc, again)
		}
	})
}
