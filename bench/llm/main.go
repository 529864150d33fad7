// Command llm measures relia load llm's accuracy and memory against relia
// ai mock (package ai/mock), served by a child process of its own on
// another CPU than the generator's:
//
//   - accuracy: the mock waits a known time to first token and then sends
//     tokens at a known rate; the generator's p50 time to first token,
//     inter-token latency and time per output token are set beside them
//     (goal: within 2 ms), and the output tokens it counted beside the
//     tokens the mock sent (goal: exactly equal);
//   - memory: -streams concurrent streams held open (closed model), the
//     generator's peak resident set size (goal: at most 250 MB).
//
// Run it with make bench-llm on a quiet machine; it exits 1 when a goal is
// missed. The mock answers only to 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/bench/internal/harness"
	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/load"
)

func main() {
	var (
		serve    = flag.String("serve-mock", "", "internal: serve the mock on this address")
		ttft     = flag.Duration("ttft", 100*time.Millisecond, "the mock's time to first token")
		tps      = flag.Float64("tps", 50, "the mock's tokens per second after the first")
		tokens   = flag.Int("tokens", 32, "tokens in each answer")
		rate     = flag.Float64("rate", 20, "accuracy: requests per second (open model)")
		duration = flag.Duration("duration", 20*time.Second, "accuracy: how long to send")
		streams  = flag.Int("streams", 5000, "memory: concurrent streams (0 skips the memory run)")
		hold     = flag.Duration("hold", 15*time.Second, "memory: how long the streams run")
		only     = flag.String("only", "", "run only accuracy or memory")
	)
	flag.Parse()
	if *serve != "" {
		serveMock(*serve, *ttft, *tps, *tokens)
		return
	}
	raiseFileLimit()
	ok := true
	if *only != "memory" {
		r, err := accuracy(*ttft, *tps, *tokens, *rate, *duration)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/llm:", err)
			os.Exit(4)
		}
		ok = ok && r
	}
	if *only != "accuracy" && *streams > 0 {
		r, err := memory(*streams, *hold)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/llm:", err)
			os.Exit(4)
		}
		ok = ok && r
	}
	if !ok {
		os.Exit(1)
	}
}

// serveMock serves the simulator until the harness stops it.
func serveMock(addr string, ttft time.Duration, tps float64, tokens int) {
	sim, err := mock.New(mock.Options{Seed: 1, TimeToFirstToken: ttft, TokensPerSecond: tps, OutputTokens: tokens})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	srv := &http.Server{Addr: addr, Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); _ = srv.Close() }() // ends with the signal
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
}

// startMock starts the mock in a child process, on CPU 1 when taskset
// and a second CPU are there, and returns its base URL and its stop.
func startMock(ttft time.Duration, tps float64, tokens int) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	port := harness.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{self, "-serve-mock", addr, "-ttft", ttft.String(), "-tps", fmt.Sprint(tps), "-tokens", strconv.Itoa(tokens)}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() > 1 {
		args = append([]string{"taskset", "-c", "1"}, args...)
		pinSelf("0")
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }
	if err := harness.WaitPort(port, 10*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return "http://" + addr, stop, nil
}

// pinSelf keeps the generator on cpus, away from the mock.
func pinSelf(cpus string) {
	_ = exec.Command("taskset", "-a", "-c", "-p", cpus, strconv.Itoa(os.Getpid())).Run()
}

// mockSent counts the answers the mock gave in full (status 200).
func mockSent(base string) (int, error) {
	resp, err := http.Get(base + "/mock/requests")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var reqs []mock.Request
	if err := json.NewDecoder(resp.Body).Decode(&reqs); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range reqs {
		if r.Status == http.StatusOK && r.Op == "chat" {
			n++
		}
	}
	return n, nil
}

func p50(res *llmload.Result, metric string) time.Duration {
	v, _ := res.Value(load.Threshold{Metric: metric, Aggregation: "p", Percentile: 50})
	return time.Duration(v * float64(time.Millisecond))
}

// accuracy runs the open model against the mock and sets the measured
// p50s beside the mock's pacing.
func accuracy(ttft time.Duration, tps float64, tokens int, rate float64, d time.Duration) (bool, error) {
	base, stop, err := startMock(ttft, tps, tokens)
	if err != nil {
		return false, err
	}
	defer stop()
	sched, err := load.ConstantSchedule(rate, d)
	if err != nil {
		return false, err
	}
	res, err := llmload.Run(context.Background(), llmload.Options{URL: base + "/v1/chat/completions", Schedule: sched,
		Prompts: llmload.Synthetic(1, 50, llmload.Lengths{Mean: 64}, llmload.Lengths{Mean: float64(tokens)}), MaxTokens: tokens})
	if err != nil {
		return false, err
	}
	sent, err := mockSent(base)
	if err != nil {
		return false, err
	}
	gap := time.Duration(float64(time.Second) / tps)
	fmt.Printf("accuracy: %d requests at %.4g/s over %s, the mock at TTFT %s and %.4g tokens/s (%s a token), %d tokens an answer\n",
		res.Requests.Total().Sent(), rate, d, ttft, tps, gap, tokens)
	ok := true
	row := func(name string, measured, configured time.Duration) {
		diff := measured - configured
		verdict := "within 2ms"
		if diff < -2*time.Millisecond || diff > 2*time.Millisecond {
			verdict, ok = "OFF BY MORE THAN 2ms", false
		}
		fmt.Printf("  %-24s p50 %-10s configured %-10s diff %-10s %s\n", name, measured.Round(10*time.Microsecond),
			configured, diff.Round(10*time.Microsecond), verdict)
	}
	row("time to first token", p50(res, "llm_time_to_first_token"), ttft)
	row("inter-token latency", p50(res, "llm_inter_token_latency"), gap)
	row("time per output token", p50(res, "llm_time_per_output_token"), gap)
	counted := res.Tokens.Total().BytesIn
	want := int64(sent) * int64(tokens)
	verdict := "exact"
	if counted != want || res.Endings[llmload.EndDone] != int64(sent) {
		verdict, ok = "NOT EXACT", false
	}
	fmt.Printf("  output tokens: counted %d, the mock sent %d (%d answers); %s\n", counted, want, sent, verdict)
	h := res.Health()
	fmt.Printf("  generator: %s\n", h.Text())
	if !h.Conclusive {
		fmt.Println("  the generator could not keep its schedule: the figures are not a measure of accuracy; run on a quiet machine")
		ok = false
	}
	return ok, nil
}

// memTokens is the length of the memory run's answers.
const memTokens = 8

// memory holds streams concurrent streams open and reports the
// generator's peak RSS.
func memory(streams int, hold time.Duration) (bool, error) {
	// Each stream lasts 4.5s (a first token after 1s, then one every
	// 500ms), so every user keeps a stream open nearly all the time.
	base, stop, err := startMock(time.Second, 2, memTokens)
	if err != nil {
		return false, err
	}
	defer stop()
	before := rssKB("VmRSS")
	peakCh := make(chan int64, 1)
	done := make(chan struct{})
	go func() { // ends when done closes
		var peak int64
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				peakCh <- peak
				return
			case <-t.C:
				peak = max(peak, rssKB("VmRSS"))
			}
		}
	}()
	res, err := llmload.Run(context.Background(), llmload.Options{URL: base + "/v1/chat/completions", Concurrency: streams, Duration: hold,
		Prompts: llmload.Synthetic(2, 100, llmload.Lengths{Mean: 64}, llmload.Lengths{Mean: memTokens}), MaxTokens: memTokens})
	close(done)
	if err != nil {
		return false, err
	}
	peak := <-peakCh
	hwm := rssKB("VmHWM")
	fmt.Printf("memory: %d concurrent users for %s: %d requests, endings %v\n", streams, hold, res.Requests.Total().Sent(), endings(res))
	fmt.Printf("  peak RSS %.1f MB sampled (%.1f MB high-water mark; %.1f MB before the streams); goal at most 250 MB: ",
		float64(peak)/1024, float64(hwm)/1024, float64(before)/1024)
	ok := hwm <= 250*1024
	if ok {
		fmt.Println("met")
	} else {
		fmt.Println("MISSED")
	}
	peakStreams := res.Generator.PeakInFlight
	fmt.Printf("  streams open at once: at most %d\n", peakStreams)
	if peakStreams < streams {
		fmt.Printf("  only %d of %d streams were open at once: the figure does not hold %d streams\n", peakStreams, streams, streams)
		ok = false
	}
	return ok, nil
}

func endings(res *llmload.Result) string {
	var parts []string
	for _, e := range llmload.Endings {
		if n := res.Endings[e]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, e))
		}
	}
	return strings.Join(parts, ", ")
}

// rssKB reads a figure of /proc/self/status in kB (VmRSS, VmHWM).
func rssKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// raiseFileLimit lets the harness and its mock hold a socket per stream.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}
