package gateway

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// startLoggedGateway starts a gateway with one route to a backend, its
// access log written to the returned buffer.
func startLoggedGateway(t *testing.T) (*Gateway, string, *backend, *syncBuffer) {
	logs := new(syncBuffer)
	be := newBackend(t, "svc")
	g, url := startGateway(t, `  upstreams: [{name: svc, targets: [{address: "`+be.addr()+`"}]}]
  routes: [{name: r, upstream: svc}]
`, Options{AccessLog: logs})
	return g, url, be, logs
}

func TestAccessLogLineIsJSON(t *testing.T) {
	t.Parallel()
	g, url, be, logs := startLoggedGateway(t)
	get(t, "GET", url+"/a%22b%5Cc%0A%E2%80%A8%FF?secret=1", map[string]string{"X-Request-Id": "req-1", "Authorization": "Bearer hush"})
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(logs.String())
	var e map[string]any
	if err := json.Unmarshal([]byte(line), &e); err != nil {
		t.Fatalf("access log line %q: %v", line, err)
	}
	want := map[string]any{
		"level": "INFO", "msg": "request", "request_id": "req-1", "route": "r", "upstream": be.addr(),
		"method": "GET", "path": "/a\"b\\c\n\u2028\ufffd", "client_ip": "127.0.0.1", "status": 200.0, "attempts": 1.0,
		"bytes_in": 0.0, "bytes_out": 3.0, "reason": "", "policy": "", "tenant": "",
	}
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s = %#v, want %#v", k, e[k], v)
		}
	}
	for _, k := range []string{"time", "trace_id", "latency_ms"} {
		if _, ok := e[k]; !ok {
			t.Errorf("no %s in %s", k, line)
		}
	}
	if strings.Contains(line, "hush") || strings.Contains(line, "secret") {
		t.Errorf("the line leaks a header or the query: %s", line)
	}
}

// TestAccessLogTraceID checks the trace id a line names: the client's from
// its traceparent, else a fresh one, never the previous request's.
func TestAccessLogTraceID(t *testing.T) {
	t.Parallel()
	g, url, _, logs := startLoggedGateway(t)
	const client = "4bf92f3577b34da6a3ce929d0e0e4736"
	get(t, "GET", url+"/a", map[string]string{"Traceparent": "00-" + strings.ToUpper(client) + "-00f067aa0ba902b7-01"})
	get(t, "GET", url+"/b", nil)
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var e struct {
			TraceID string `json:"trace_id"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("access log line %q: %v", line, err)
		}
		ids = append(ids, e.TraceID)
	}
	if len(ids) != 2 {
		t.Fatalf("%d lines, want 2: %q", len(ids), ids)
	}
	if ids[0] != client {
		t.Errorf("trace_id %q, want the client's %q", ids[0], client)
	}
	if _, err := hex.DecodeString(ids[1]); err != nil || len(ids[1]) != 32 || ids[1] == client || ids[1] == strings.Repeat("0", 32) {
		t.Errorf("trace_id %q of a request without a traceparent, want a fresh one", ids[1])
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\n\t", "\u2028\u2029", "\xff\xfe", "héllo wörld", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONStr(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%q encodes as invalid JSON %s: %v", s, out, err)
		}
		ref, _ := json.Marshal(s)
		var want string
		json.Unmarshal(ref, &want)
		if got != want {
			t.Errorf("%q decodes as %q, encoding/json's as %q", s, got, want)
		}
	})
}

func TestAccessLogKeepsEveryLineAtShutdown(t *testing.T) {
	t.Parallel()
	g, url, _, logs := startLoggedGateway(t)
	const n = 300
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 6 {
				get(t, "GET", fmt.Sprintf("%s/%d/%d", url, w, i), nil)
			}
		}()
	}
	wg.Wait()
	if err := g.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d access log lines after a graceful shutdown, want %d", len(lines), n)
	}
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("line %q is not JSON", l)
		}
	}
}

// gatedWriter counts the lines written to it and blocks writes until
// opened, so a test can fill both of the access log's buffers. entered
// gets a value each time a write begins.
type gatedWriter struct {
	open    chan struct{}
	entered chan struct{}
	mu      sync.Mutex
	lines   map[string]int
}

func (w *gatedWriter) Write(p []byte) (int, error) {
	select {
	case w.entered <- struct{}{}:
	default:
	}
	<-w.open
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimSuffix(string(p), "\n"), "\n") {
		w.lines[l]++
	}
	return len(p), nil
}

// The access log's writer never drops a line: with the file stalled,
// requests wait once both buffers are full, and every line arrives exactly
// once when it moves again. The flush tick comes from a fake clock, at the
// worst moment: it hands the writer a nearly empty buffer that then sticks
// in the stalled file, so the writers have one buffer left, not two. Each
// wait below ends by construction, whatever the machine's speed.
func TestBufferedWriterLosesNothingWhenTheFileStalls(t *testing.T) {
	t.Parallel()
	dst := &gatedWriter{open: make(chan struct{}), entered: make(chan struct{}, 1), lines: map[string]int{}}
	clk := clock.NewFake(time.Time{})
	b := newBufferedWriter(dst, clk)
	const writers, perWriter, early = 8, 2000, 100
	pad := strings.Repeat("x", 200)
	line := func(w, i int) []byte { return fmt.Appendf(nil, "%d-%d %s\n", w, i, pad) }
	for i := range early {
		b.Write(line(writers, i))
	}
	clk.BlockUntil(1) // the flush timer
	clk.Advance(flushEvery)
	<-dst.entered // the tick took the early lines and is stuck writing them
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				b.Write(line(w, i))
				written.Add(1)
			}
		})
	}
	// Lines are 205 to 208 bytes, so the buffer left takes at least
	// accessBufferBytes / 208 of them before a writer has to wait, and at most
	// 1 MiB / 205 + 1 (the line that finds it full) plus one line per
	// writer: never all 16,000.
	const least, most = accessBufferBytes / 208, accessBufferBytes/205 + 1 + writers
	for written.Load() < least {
		runtime.Gosched()
	}
	if n := written.Load(); n > most {
		t.Fatalf("%d lines taken while the file was stalled with one buffer free, at most %d fit", n, most)
	}
	close(dst.open)
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.Write([]byte("after-close\n")) // goes straight to the file
	if want := writers*perWriter + early + 1; len(dst.lines) != want {
		t.Fatalf("%d distinct lines, want %d", len(dst.lines), want)
	}
	for l, n := range dst.lines {
		if n != 1 {
			t.Fatalf("line %.20q written %d times", l, n)
		}
	}
}

// Collected lines reach the file on the flush tick, before any buffer
// fills.
func TestBufferedWriterFlushesOnTheTick(t *testing.T) {
	t.Parallel()
	dst := &gatedWriter{open: make(chan struct{}), entered: make(chan struct{}, 1), lines: map[string]int{}}
	close(dst.open)
	clk := clock.NewFake(time.Time{})
	b := newBufferedWriter(dst, clk)
	defer b.Close()
	b.Write([]byte("one\n"))
	clk.BlockUntil(1)
	clk.Advance(flushEvery)
	<-dst.entered
	clk.BlockUntil(1) // the timer is set again once the lines are written
	dst.mu.Lock()
	got := dst.lines["one"]
	dst.mu.Unlock()
	if got != 1 {
		t.Fatalf("after a tick the file holds %d copies of the line, want 1", got)
	}
}

// orderedWriter records the lines it gets, in order.
type orderedWriter struct {
	mu    sync.Mutex
	lines []string
}

func (w *orderedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, strings.Split(strings.TrimSuffix(string(p), "\n"), "\n")...)
	return len(p), nil
}

// Lines written while Close runs are neither lost nor reordered, and no
// writer is left waiting for a buffer the stopped writer goroutine would
// have returned.
func TestBufferedWriterKeepsLinesWrittenDuringClose(t *testing.T) {
	t.Parallel()
	for range 20 {
		dst := &orderedWriter{}
		b := newBufferedWriter(dst, nil)
		const writers, perWriter = 4, 3000
		pad := strings.Repeat("x", 200) // about 2.5 MiB in all: both buffers turn over
		var wg sync.WaitGroup
		var started sync.WaitGroup
		started.Add(writers)
		for w := range writers {
			wg.Go(func() {
				started.Done()
				for i := range perWriter {
					b.Write(fmt.Appendf(nil, "%d %d %s\n", w, i, pad))
				}
			})
		}
		started.Wait()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if len(dst.lines) != writers*perWriter {
			t.Fatalf("%d lines, want %d", len(dst.lines), writers*perWriter)
		}
		next := make([]int, writers)
		for _, l := range dst.lines {
			var w, i int
			fmt.Sscanf(l, "%d %d", &w, &i)
			if i != next[w] {
				t.Fatalf("writer %d: line %d after %d lines; lines were lost or reordered", w, i, next[w])
			}
			next[w]++
		}
	}
}

// BenchmarkAccessLogWrite writes 400-byte lines, an access line's usual
// size, through the buffered writer to a file, by buffer size: each line
// is copied into the buffer, which the writer goroutine writes out.
func BenchmarkAccessLogWrite(b *testing.B) {
	line := []byte(strings.Repeat("x", 399) + "\n")
	for _, size := range []int{accessBufferBytes, 1 << 20} {
		b.Run(fmt.Sprintf("buffer=%dKiB", size>>10), func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "access.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			w := newBufferedWriterSize(f, nil, size)
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			for b.Loop() {
				w.Write(line)
			}
			b.StopTimer()
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// An access line's time is what time.RFC3339Nano writes, whether the
// second was formatted for an earlier line or not: in UTC, in zones on
// either side of it, across a daylight saving change, for whole seconds
// and every count of fraction digits, and for years of other widths.
func TestLogStampMatchesRFC3339Nano(t *testing.T) {
	t.Parallel()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Skip("no time zone database:", err)
	}
	locs := []*time.Location{time.UTC, time.Local, ny, time.FixedZone("", 5*3600+30*60), time.FixedZone("X", -9*3600)}
	rng := rand.New(rand.NewPCG(1, 2))
	var times []time.Time
	// 2026-03-08 07:00 UTC is 02:00 in New York, where clocks went forward.
	dst := time.Date(2026, 3, 8, 6, 59, 58, 0, time.UTC)
	for i := range 5 * time.Second / (250 * time.Millisecond) {
		times = append(times, dst.Add(i*250*time.Millisecond))
	}
	for _, sec := range []int64{0, 1, -1, -62135596800 - 86400, 253402300799, 253402300800, 1796000000} {
		for _, ns := range []int{0, 1, 10, 100, 999999999, 500000000, 120000000, 123456789} {
			times = append(times, time.Unix(sec, int64(ns)))
		}
	}
	for range 2000 {
		// Runs within a second, then a jump, as traffic goes.
		base := time.Unix(1700000000+rng.Int64N(400000000), 0)
		for range 1 + rng.IntN(4) {
			times = append(times, base.Add(time.Duration(rng.Int64N(int64(time.Second)))))
		}
	}
	for _, loc := range locs {
		var s logStamp
		for _, tm := range times {
			tm = tm.In(loc)
			want := tm.AppendFormat(nil, time.RFC3339Nano)
			if got := s.appendTime([]byte("x"), tm); string(got[1:]) != string(want) {
				t.Fatalf("%v in %v: %q, want %q", tm.UnixNano(), loc, got[1:], want)
			}
		}
	}
}

// An access line's latency_ms is what strconv writes for the float
// milliseconds, beyond the bound where the integer arithmetic stops too.
func TestAppendMillisMatchesStrconv(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	ds := []time.Duration{0, 1, 9, 10, 999, 1000, 100000, 999999, time.Millisecond, time.Millisecond + 1, 1234567890,
		time.Hour, exactMillis - 1, exactMillis, exactMillis + 1, 1<<53 - 1, 1 << 53, 1<<53 + 1, math.MaxInt64, -1, -1234567, math.MinInt64}
	for range 200000 {
		// Every magnitude, from nanoseconds to past the bound.
		ds = append(ds, time.Duration(rng.Int64N(int64(1)<<(1+rng.IntN(62)))))
	}
	for _, d := range ds {
		want := strconv.AppendFloat(nil, float64(d)/float64(time.Millisecond), 'f', -1, 64)
		if got := appendMillis([]byte("x"), d); string(got[1:]) != string(want) {
			t.Fatalf("%d ns: %q, want %q", int64(d), got[1:], want)
		}
	}
}

// BenchmarkAccessLogLine formats and buffers the line of one proxied
// request as the gateway benchmark's (bench/gateway) look.
func BenchmarkAccessLogLine(b *testing.B) {
	x := &exchange{exchangeState: exchangeState{status: 200, attempts: 1, bytesOut: 3, client: netip.MustParseAddr("127.0.0.1"), start: time.Unix(1e9, 0)}}
	x.rid = []byte("0123456789abcdef0123456789abcdef")
	x.traceID = [16]byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	x.path = []byte("/")
	x.req.method = []byte("GET")
	a := &accessLog{w: newBufferedWriter(io.Discard, nil)}
	defer a.w.Close()
	b.ReportAllocs()
	for b.Loop() {
		a.log(x, "all", 1500*time.Microsecond)
	}
}
