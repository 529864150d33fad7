package load

import (
	"testing"
	"time"
)

func TestCheckHolds(t *testing.T) {
	path, err := ParseJSONPath("$.order.state")
	if err != nil {
		t.Fatal(err)
	}
	paid := "paid"
	body := []byte(`{"order":{"state":"paid","total":12}}`)
	tests := []struct {
		name  string
		check Check
		resp  Response
		want  bool
	}{
		{"status in set", Check{Status: []int{200, 201}}, Response{Status: 201}, true},
		{"status not in set", Check{Status: []int{200}}, Response{Status: 503}, false},
		{"latency under bound", Check{MaxLatency: 100 * time.Millisecond}, Response{Latency: 100 * time.Millisecond}, true},
		{"latency over bound", Check{MaxLatency: 100 * time.Millisecond}, Response{Latency: 101 * time.Millisecond}, false},
		{"path exists", Check{JSONPath: path}, Response{Body: body}, true},
		{"path equals", Check{JSONPath: path, Equals: &paid}, Response{Body: body}, true},
		{"path differs", Check{JSONPath: path, Equals: ptr("open")}, Response{Body: body}, false},
		{"path missing", Check{JSONPath: path}, Response{Body: []byte(`{"order":{}}`)}, false},
		{"body not JSON", Check{JSONPath: path}, Response{Body: []byte(`<html>`)}, false},
		{"contains", Check{Contains: []byte(`"total":12`)}, Response{Body: body}, true},
		{"does not contain", Check{Contains: []byte(`refund`)}, Response{Body: body}, false},
		{"all together", Check{Status: []int{200}, MaxLatency: time.Second, JSONPath: path, Equals: &paid, Contains: []byte("order")},
			Response{Status: 200, Latency: time.Millisecond, Body: body}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := tt.resp
			if got := tt.check.Holds(&resp); got != tt.want {
				t.Fatalf("Holds = %v, want %v (check %s)", got, tt.want, tt.check.Label())
			}
		})
	}
}

func TestCheckLabels(t *testing.T) {
	path, _ := ParseJSONPath("$.id")
	for _, tt := range []struct {
		c    Check
		want string
	}{
		{Check{Name: "paid"}, "paid"},
		{Check{Status: []int{200}}, "status in [200]"},
		{Check{MaxLatency: time.Second}, "latency <= 1s"},
		{Check{JSONPath: path}, "$.id exists"},
		{Check{JSONPath: path, Equals: ptr("7")}, `$.id == "7"`},
		{Check{Contains: []byte("ok")}, `body contains "ok"`},
	} {
		if got := tt.c.Label(); got != tt.want {
			t.Errorf("Label() = %q, want %q", got, tt.want)
		}
	}
	if (&Check{Status: []int{200}}).NeedsBody() || !(&Check{Contains: []byte("x")}).NeedsBody() {
		t.Error("NeedsBody wrong")
	}
}

func ptr[T any](v T) *T { return &v }
