package main

import (
	"strconv"
	"testing"
)

// TestWirePairsAStream feeds the capture one stream's segments, as the
// kernel would hand them over, and checks relia's own time to first
// token: (first token out - request in) - (first token in - request out).
func TestWirePairsAStream(t *testing.T) {
	const relia, provider, client, reliaOut = 8000, 9000, 40001, 50001
	w := newWireCapture(relia, provider)
	role := []byte(`data: {"choices":[{"delta":{"role":"assistant","content":""}}]}` + "\n\n")
	token := []byte(`data: {"choices":[{"delta":{"content":" hello"}}]}` + "\n\n")
	w.payload(client, relia, []byte("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"), 1000)
	w.payload(client, relia, []byte(`{"user":"ttft-0000007","model":"m"}`), 1100)
	w.payload(reliaOut, provider, []byte("POST /v1/chat/completions HTTP/1.1\r\n\r\n"+`{"user":"ttft-0000007","model":"m"}`), 1400)
	w.payload(provider, reliaOut, role, 2000)
	w.payload(relia, client, role, 2100) // no content token yet
	w.payload(provider, reliaOut, token, 2500)
	w.payload(relia, client, token, 2800)
	w.payload(provider, reliaOut, token, 2900) // later tokens change nothing
	w.payload(relia, client, token, 3000)
	got := w.streams["0000007"]
	if got == nil || *got != (wireTimes{in: 1000, out: 1400, firstIn: 2500, firstOut: 2800}) {
		t.Fatalf("times %+v", got)
	}
	r, err := w.results()
	if err != nil {
		t.Fatal(err)
	}
	// (2800-1000) - (2500-1400) = 700 ns.
	if len(r.added) != 1 || r.added[0] != 700e-9 || r.ask[0] != 400e-9 || r.answer[0] != 300e-9 || r.provider[0] != 1100e-9 {
		t.Errorf("result %+v", r)
	}
}

// TestArrivalsFindTheClump reads a schedule of one request every 0.3 ms
// with a 5 ms hole, after which the client sent the 16 it owed at once.
func TestArrivalsFindTheClump(t *testing.T) {
	streams := map[string]*wireTimes{}
	at := int64(0)
	add := func(n int, step int64) {
		for range n {
			streams[strconv.Itoa(len(streams))] = &wireTimes{in: at}
			at += step
		}
	}
	add(20, 300_000)
	at += 5_000_000
	add(16, 10_000)
	add(20, 300_000)
	gap, densest := arrivals(streams)
	if gap != 5.3e-3 {
		t.Errorf("largest gap %v s, want 5.3 ms", gap)
	}
	// The 16 of the clump, and the three the schedule sends within a
	// millisecond of its first.
	if densest != 19 {
		t.Errorf("densest millisecond %d, want 19", densest)
	}
}

// TestStarvedRunsAreTheClients: a run where ten times the schedule's
// requests arrived within a millisecond was the client's burst, not
// relia's tail; the densest millisecond of a client that kept up is not.
func TestStarvedRunsAreTheClients(t *testing.T) {
	for _, c := range []struct {
		densest int
		rate    float64
		want    bool
	}{
		{69, 3221, true},  // behind a 23.9 ms hole in the client's sends
		{35, 3037, true},  // behind a 12 ms one
		{25, 3037, false}, // the most in a run that kept its schedule
		{8, 3221, false},
		{12, 1000, true},
	} {
		if got := starved(wireResult{densest: c.densest}, c.rate); got != c.want {
			t.Errorf("%d within a millisecond at %.0f/s: starved %v, want %v", c.densest, c.rate, got, c.want)
		}
	}
}
