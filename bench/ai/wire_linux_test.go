package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
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

// TestCaptureTimesStreamsOnLoopback runs the capture on real sockets: a
// client, a stand-in for relia and one for the provider pass streams over
// loopback, and the capture, reading from the runtime's poller, must time
// every one of them whole, the last ones included, which reach the socket
// just before finish. It needs CAP_NET_RAW and skips without it.
func TestCaptureTimesStreamsOnLoopback(t *testing.T) {
	reliaLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer reliaLn.Close()
	providerLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer providerLn.Close()
	port := func(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }
	capture, err := startWireCapture(port(reliaLn), port(providerLn))
	if err != nil {
		t.Skipf("no packet capture here: %v", err)
	}
	token := []byte(`data: {"choices":[{"delta":{"content":" hello"}}]}` + "\n\n")
	// The provider answers each request it reads with a token.
	go func() {
		c, err := providerLn.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			c.Write(token)
		}
	}()
	// relia passes each request on and each answer back.
	go func() {
		c, err := reliaLn.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		up, err := net.Dial("tcp", providerLn.Addr().String())
		if err != nil {
			return
		}
		defer up.Close()
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if _, err := up.Write(buf[:n]); err != nil {
				return
			}
			if n, err = up.Read(buf); err != nil {
				return
			}
			c.Write(buf[:n])
		}
	}()
	client, err := net.Dial("tcp", reliaLn.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	const streams = 20
	buf := make([]byte, 4096)
	for i := range streams {
		req := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n{%s%07d\",\"model\":\"m\"}", ttftMarker, i)
		if _, err := client.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	r, err := capture.finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.added) != streams || r.partial != 0 || r.drops != 0 {
		t.Fatalf("timed %d streams whole and %d in part, %d packets dropped; want %d whole", len(r.added), r.partial, r.drops, streams)
	}
	for i := range r.ask {
		if r.ask[i] <= 0 || r.answer[i] <= 0 || r.provider[i] <= 0 {
			t.Fatalf("a span was not positive: ask %v, answer %v, provider %v", r.ask, r.answer, r.provider)
		}
	}
}

// TestCollectionsAndTheSlowStreamsNearThem: the collections a gctrace
// log lists are placed from the program's start, those of a run kept,
// and a slow stream counts as a collection's when it arrived within the
// window after its start.
func TestCollectionsAndTheSlowStreamsNearThem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relia.log")
	log := "relia ai serve: the AI gateway on http://127.0.0.1:1\n" +
		"gc 1 @0.037s 8%: 0.014+13+0.011 ms clock, 0.014+0.80/3.7/0+0.011 ms cpu, 3->4->2 MB, 64 MB goal, 0 MB stacks, 0 MB globals, 1 P\n" +
		`{"time":"2026-12-07T23:43:37.628408822Z","level":"INFO","msg":"request"}` + "\n" +
		"gc 2 @6.309s 0%: 0.030+8.0+0.003 ms clock, 0.030+0.18/2.0/0.075+0.003 ms cpu, 61->61->5 MB, 64 MB goal, 0 MB stacks, 0 MB globals, 1 P\n" +
		"gc 3 @7.432s 0%: 0.038+5.9+0.003 ms clock, 0.038+0.44/1.7/0+0.003 ms cpu, 67->68->5 MB, 70 MB goal, 0 MB stacks, 0 MB globals, 1 P\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 7, 23, 43, 30, 0, time.UTC)
	g := &gcLog{path: path, started: started}
	got := g.collections(started.Add(time.Second), started.Add(8*time.Second))
	want := []time.Time{started.Add(6309 * time.Millisecond), started.Add(7432 * time.Millisecond)}
	if !slices.Equal(got, want) {
		t.Fatalf("collections %v, want %v", got, want)
	}
	r := wireResult{slowAt: []int64{
		want[0].Add(-time.Millisecond).UnixNano(),     // before the first: not its
		want[0].Add(12 * time.Millisecond).UnixNano(), // in the first's window
		want[1].Add(49 * time.Millisecond).UnixNano(), // in the second's
		want[1].Add(51 * time.Millisecond).UnixNano(), // past it
	}}
	if n := r.slowNear(got, gcWindow); n != 2 {
		t.Errorf("%d slow streams near a collection, want 2", n)
	}
}
