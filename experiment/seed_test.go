package experiment

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestSourceIsStable pins the first numbers of a stream: a change to the
// derivation would change every recorded run's decisions on replay.
func TestSourceIsStable(t *testing.T) {
	t.Parallel()
	s := NewSource(42, "fault/kill-catalog/replica")
	got := []uint64{s.Uint64(), s.Uint64(), uint64(s.IntN(1000)), uint64(s.Float64() * 1e6)}
	want := []uint64{pinned[0], pinned[1], pinned[2], pinned[3]}
	if !slices.Equal(got, want) {
		t.Errorf("stream of seed 42 starts %v, want %v", got, want)
	}
	if DeriveSeed(42, "fault-server") != 11076556130130846076 {
		t.Errorf("DeriveSeed(42, fault-server) = %d", DeriveSeed(42, "fault-server"))
	}
}

var pinned = [4]uint64{4822837064837191136, 848026036346624998, 346, 86227}

// TestSourceStreams: one seed and name give one stream; another name or
// seed another.
func TestSourceStreams(t *testing.T) {
	t.Parallel()
	draw := func(seed uint64, name string) []int {
		s := NewSource(seed, name)
		out := make([]int, 16)
		for i := range out {
			out[i] = s.IntN(1 << 20)
		}
		return out
	}
	a := draw(1, "x")
	if !slices.Equal(a, draw(1, "x")) {
		t.Error("the same seed and name gave two streams")
	}
	if slices.Equal(a, draw(2, "x")) || slices.Equal(a, draw(1, "y")) {
		t.Error("another seed or name gave the same stream")
	}
}

// TestIntNCoversItsRange: every value of a small range comes up, none
// outside it.
func TestIntNCoversItsRange(t *testing.T) {
	t.Parallel()
	s := NewSource(3, "range")
	var counts [5]int
	for range 5000 {
		counts[s.IntN(5)]++
	}
	for v, n := range counts {
		if n < 800 || n > 1200 {
			t.Errorf("value %d came %d times in 5000 draws of 5 values", v, n)
		}
	}
	for range 1000 {
		if f := s.Float64(); f < 0 || f >= 1 {
			t.Fatalf("Float64 %v outside [0, 1)", f)
		}
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.NotFoundHandler())
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cases := []struct {
		name        string
		plan        Plan
		wantErr     string
		wantErrFree bool
	}{
		{"reachable", Plan{Target: Target{URL: up.URL}}, "", true},
		{"unreachable target", Plan{Target: Target{URL: closed}}, "target " + closed + " is unreachable", false},
		{"unreachable fault server", Plan{Target: Target{URL: up.URL}, FaultServer: closed}, "fault server " + closed + " is unreachable", false},
		{"target the run starts", Plan{Target: Target{URL: closed, Services: []Service{{Name: "a", Command: []string{"x"}, Replicas: 1, Port: portOf(t, closed)}}}}, "", true},
	}
	for _, tc := range cases {
		err := Preflight(context.Background(), &tc.plan, 0)
		switch {
		case tc.wantErrFree && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.wantErrFree && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func portOf(t *testing.T, u string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(u, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range port {
		n = n*10 + int(c-'0')
	}
	return n
}
