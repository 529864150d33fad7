package main

import (
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

func kafkaBroker(t *testing.T) string {
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

func TestKafkaLoadExitCodes(t *testing.T) {
	t.Parallel()
	addr := kafkaBroker(t)
	// The generator's punctuality is not what these cases are about, so
	// its self-check is off (--min-on-time 0).
	base := []string{"kafka", "load", "--brokers", addr, "--rate", "100", "--duration", "500ms", "--min-on-time", "0"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout for passes, stderr otherwise
	}{
		{"passes", []string{"--topic", "a", "--threshold", "kafka_unconsumed:count==0", "--threshold", "kafka_e2e_duration:p(99)<60000"}, exitPass, "50 read back, 0 unconsumed"},
		{"threshold fails", []string{"--topic", "b", "--threshold", "kafka_consumed:count>50"}, exitFailed, "threshold kafka_consumed count>50 failed: 50"},
		{"unknown metric", []string{"--threshold", "http_req_duration:p(99)<5"}, exitBadInput, `unknown metric "http_req_duration"`},
		{"bad acks", []string{"--acks", "some"}, exitBadInput, `--acks "some"`},
		{"bad broker", []string{"--brokers", "nope"}, exitBadInput, `--brokers: "nope": want host:port`},
		{"no broker there", []string{"--brokers", "127.0.0.1:1", "--topic", "c"}, exitRuntime, "kafka load"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(t, append(append([]string{}, base...), tc.args...)...)
			where := errOut
			if tc.code == exitPass {
				where = out
			}
			if code != tc.code || !strings.Contains(where, tc.want) {
				t.Errorf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errOut)
			}
		})
	}
}

func TestKafkaLoadJSON(t *testing.T) {
	t.Parallel()
	addr := kafkaBroker(t)
	code, out, errOut := runCLI(t, "kafka", "load", "--brokers", addr, "--topic", "j", "--rate", "50", "--duration", "400ms",
		"--partitions", "2", "--min-on-time", "0", "-o", "json")
	if code != exitPass {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var doc struct {
		Schema     string           `json:"schema"`
		Partitions []int32          `json:"partitions"`
		Acked      int64            `json:"acked"`
		Consumed   int64            `json:"consumed"`
		E2E        map[string]any   `json:"e2e_by_partition"`
		Lag        []map[string]any `json:"final_lag"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "relia/kafka/v1" || len(doc.Partitions) != 2 || doc.Acked != 20 || doc.Consumed != 20 || len(doc.E2E) != 2 || len(doc.Lag) != 2 {
		t.Errorf("results: %+v", doc)
	}
}
