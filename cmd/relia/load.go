package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"

	"github.com/relia-dev/relia/internal/config"
	"github.com/relia-dev/relia/internal/promrw"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/report/loadreport"
)

func init() { register(newLoadCmd) }

// loadFlags are relia load's flags.
type loadFlags struct {
	rate        float64
	vus         int
	duration    time.Duration
	maxInFlight int
	lateAfter   time.Duration
	minOnTime   string
	headers     []string
	method      string
	body        string
	thresholds  []string
	timeout     time.Duration
	httpVersion string
	insecure    bool
	segment     string
	startAt     string
	out         string
	html        string
	format      string
	metricsAddr string
	metricsHold time.Duration
	traceSample float64
	outputs     loadOutputs
	protoFiles  []string
	importPaths []string
}

// loadOutputs are the files a load run's result is written to besides
// stdout.
type loadOutputs struct {
	out, html, junit, summaryExport string
	remoteWrite, otlp               string
}

// addLoadOutputFlags adds the result-file flags of relia load and relia
// load merge.
func addLoadOutputFlags(cmd *cobra.Command, o *loadOutputs, what string) {
	fl := cmd.Flags()
	fl.StringVar(&o.out, "out", "", "write the "+what+" (relia/load/v1 JSON, mergeable) to this file")
	fl.StringVar(&o.html, "html", "", "write a self-contained HTML report to this file")
	fl.StringVar(&o.junit, "junit", "", "write the thresholds' verdict as a JUnit XML report to this file, for CI")
	fl.StringVar(&o.summaryExport, "summary-export", "", "write the summary figures (k6's summary metrics, as in the results file) as JSON to this file")
	fl.StringVar(&o.otlp, "otlp", "", "send the run's totals as OTLP metrics (http/protobuf) to this URL at the end (http://127.0.0.1:4318/v1/metrics; OTEL_EXPORTER_OTLP_HEADERS apply)")
	fl.StringVar(&o.remoteWrite, "remote-write", "", "push the run's series, a sample per second, to this Prometheus remote write URL at the end (http://127.0.0.1:9090/api/v1/write)")
}

func newLoadCmd() *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load FILE.yaml | URL",
		Short: "Send HTTP load (open or closed model) with honest latency and k6-style thresholds",
		Long: `relia load runs a kind: Scenario file, or a one-liner against a URL.

  relia load http://127.0.0.1:8080/ --rate 1000 --duration 30s
  relia load http://127.0.0.1:8080/ --vus 50 --duration 30s --threshold 'http_req_duration:p(99)<500'
  relia load checkout.yaml --out results.json --html report.html
  relia load checkout.yaml --segment 0/4 --out part0.json   # one of 4 processes
  relia load merge part*.json --out all.json
  relia load grpc://127.0.0.1:50051/grpc.testing.TestService/UnaryCall -d '{"response_size": 10}' --rate 500
  relia load llm http://127.0.0.1:9700/v1/chat/completions --rate 5   # streams, tokens (relia load llm --help)

A grpc:// (or grpcs://) URL is a gRPC call of the method its path names:
-d is the request message in protobuf JSON, -H adds metadata, --timeout is
each call's deadline, and the method is found through the server's
reflection service or in --proto files.

--rate is the open model: requests are sent on schedule whatever the service
does, and latency runs from the scheduled time, so a stall shows (no
coordinated omission). --vus is the closed model. With a file, --rate or
--vus replace its load profile; --duration alone keeps the profile's shape
and stretches or shrinks it to that length.

Thresholds take k6's metrics and tags ('http_req_waiting{method:GET,status:200}').
Besides --out and --html, a run can write a JUnit report (--junit), a summary
export (--summary-export), and push its series to Prometheus remote write
(--remote-write) or an OpenTelemetry collector (--otlp); --trace-sample puts a
W3C traceparent on a share of the requests.

The summary goes to stdout (-o json for the results file's JSON); progress
goes to stderr: a line redrawn every second on a terminal, otherwise a line
every 10s and on SIGUSR1.

The generator judges itself first: when it could not send the open model's
requests on time (more than 10% over 10ms late, by default), the run is
inconclusive and its thresholds are reported, not judged.

Exit codes: 0 passed, 1 a threshold failed (or every request failed and no
threshold on http_req_failed says otherwise), 2 bad input, 3 interrupted,
4 runtime error, 5 inconclusive (the generator could not keep its
schedule).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runLoad(cmd, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.Float64Var(&f.rate, "rate", 0, "open model: requests per second")
	fl.IntVar(&f.vus, "vus", 0, "closed model: virtual users")
	fl.DurationVar(&f.duration, "duration", 0, "how long to send load (default 10s for a URL)")
	fl.IntVar(&f.maxInFlight, "max-in-flight", 0, "open model: cap on requests in flight; arrivals beyond it are dropped and counted")
	fl.DurationVar(&f.lateAfter, "late-after", 0, "open model: how late a request may leave and count as on time (default 10ms, or the file's lateAfter)")
	fl.StringVar(&f.minOnTime, "min-on-time", "", `open model: share of requests that must leave on time, or the run is inconclusive (default 90%, or the file's minOnTime; "0" turns the generator's self-check off)`)
	fl.StringArrayVarP(&f.headers, "header", "H", nil, "request header 'Name: value' (URL only; repeatable)")
	fl.StringVarP(&f.method, "method", "m", "", "request method (URL only; default GET, or POST with -d)")
	fl.StringVarP(&f.body, "data", "d", "", "request body (URL only)")
	fl.StringArrayVar(&f.thresholds, "threshold", nil, "threshold 'metric:expression', e.g. 'http_req_duration:p(99)<500' (repeatable)")
	fl.DurationVar(&f.timeout, "timeout", 0, "request timeout (URL only; default 30s)")
	fl.StringVar(&f.httpVersion, "http", "", `HTTP version for a URL: "1.1", "2" or "h2c"`)
	fl.BoolVarP(&f.insecure, "insecure", "k", false, "skip TLS certificate checks (URL only)")
	fl.StringVar(&f.segment, "segment", "", "run segment i/N of the test (0-based), e.g. 0/4")
	fl.StringVar(&f.startAt, "start-at", "", "start the load at this RFC 3339 time, so segments start together")
	addLoadOutputFlags(cmd, &f.outputs, "results")
	fl.StringVarP(&f.format, "output", "o", "table", "stdout format: table or json")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve live Prometheus metrics on this address during the run (127.0.0.1:9464)")
	fl.DurationVar(&f.metricsHold, "metrics-hold", 0, "with --metrics-addr: after the run, keep serving its final figures until a scrape has read them, at most this long")
	fl.Float64Var(&f.traceSample, "trace-sample", 0, "share of requests (0 to 1) that carry a fresh W3C traceparent, sampled, so they join the service's traces")
	fl.StringArrayVar(&f.protoFiles, "proto", nil, "gRPC URL: a .proto file that defines the method (repeatable); default server reflection")
	fl.StringArrayVar(&f.importPaths, "import-path", nil, "gRPC URL: a directory --proto files and their imports are found in (repeatable; default .)")
	cmd.AddCommand(newLoadMergeCmd(), newLoadValidateCmd(), newLoadSchemaCmd(), newLoadLLMCmd())
	return cmd
}

// scenarioFor builds the scenario of a file or of a one-liner URL.
func scenarioFor(target string, f *loadFlags) (*load.Scenario, error) {
	isURL := strings.Contains(target, "://")
	var sc *load.Scenario
	if isURL {
		sc = &load.Scenario{Metadata: load.Metadata{Name: "relia load " + target}}
		method := f.method
		if method == "" && f.body != "" {
			method = "POST"
		}
		req := load.RequestSpec{Name: strings.ToUpper(cmpOr(method, "GET")) + " " + target, Method: method, Path: target, Body: f.body}
		for _, h := range f.headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok || strings.TrimSpace(k) == "" {
				return nil, fmt.Errorf("-H %q: want 'Name: value'", h)
			}
			if req.Headers == nil {
				req.Headers = map[string]string{}
			}
			req.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		sc.Spec.Requests = []load.RequestSpec{req}
		sc.Spec.Timeout, sc.Spec.HTTP, sc.Spec.TLS.Insecure = f.timeout, f.httpVersion, f.insecure
		if err := grpcOneLiner(sc, target, f); err != nil {
			return nil, err
		}
		if f.rate == 0 && f.vus == 0 {
			return nil, errors.New("give --rate (requests per second) or --vus with a URL")
		}
		if f.duration == 0 {
			f.duration = 10 * time.Second
		}
	} else {
		if len(f.headers) > 0 || f.method != "" || f.body != "" || f.timeout != 0 || f.httpVersion != "" || f.insecure ||
			len(f.protoFiles) > 0 || len(f.importPaths) > 0 {
			return nil, errors.New("-H, -m, -d, --timeout, --http, --insecure, --proto and --import-path apply to a URL; set them in the scenario file")
		}
		scs, err := load.ReadScenarios(target)
		if err != nil {
			return nil, err
		}
		if len(scs) > 1 {
			return nil, fmt.Errorf("%s: %d scenarios in one file; relia load runs one", target, len(scs))
		}
		sc = scs[0]
	}
	l := &sc.Spec.Load
	switch {
	case f.rate < 0 || (isURL && f.rate == 0 && f.vus == 0):
		return nil, fmt.Errorf("--rate %v: want a rate > 0 requests per second", f.rate)
	case f.vus < 0:
		return nil, fmt.Errorf("--vus %d: want at least 1", f.vus)
	case f.rate > 0 && f.vus > 0:
		return nil, errors.New("give --rate (open model) or --vus (closed model), not both")
	case f.duration < 0:
		return nil, fmt.Errorf("--duration %s is negative", f.duration)
	case f.maxInFlight < 0:
		return nil, fmt.Errorf("--max-in-flight %d is negative", f.maxInFlight)
	}
	if f.lateAfter < 0 {
		return nil, fmt.Errorf("--late-after %s is negative", f.lateAfter)
	}
	if f.lateAfter > 0 {
		l.LateAfter = f.lateAfter
	}
	if f.minOnTime != "" {
		r, err := config.ParseRatio(f.minOnTime)
		if err != nil || r < 0 || r > 1 {
			return nil, fmt.Errorf("--min-on-time %q: want a share from 0 to 1, such as 0.9 or 90%%", f.minOnTime)
		}
		l.MinOnTime = load.OptionalRatio{Ratio: r, Set: true}
	}
	if f.rate > 0 || f.vus > 0 {
		*l = load.LoadSpec{Duration: cmpOr(f.duration, l.Duration), MaxInFlight: f.maxInFlight, GracefulStop: l.GracefulStop,
			LateAfter: l.LateAfter, MinOnTime: l.MinOnTime}
		if f.rate > 0 {
			l.Rate = &f.rate
		} else {
			l.VUs = &f.vus
		}
	} else {
		if f.duration > 0 {
			// --duration alone: the file's profile, shorter or longer.
			l.Stretch(f.duration)
		}
		if f.maxInFlight > 0 {
			l.MaxInFlight = f.maxInFlight
		}
	}
	for _, s := range f.thresholds {
		th, err := load.ParseThresholdFlag(s)
		if err != nil {
			return nil, fmt.Errorf("--threshold: %w", err)
		}
		if sc.Spec.Thresholds == nil {
			sc.Spec.Thresholds = map[string][]load.ThresholdSpec{}
		}
		ref := load.ThresholdRef(th)
		sc.Spec.Thresholds[ref] = append(sc.Spec.Thresholds[ref], load.ThresholdSpec{Threshold: th.Expr})
	}
	return sc, nil
}

func cmpOr[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}

func runLoad(cmd *cobra.Command, target string, f *loadFlags) error {
	if f.format != "table" && f.format != "json" {
		return badInput(fmt.Errorf("-o %q: want table or json", f.format))
	}
	opts := load.RunOptions{}
	if f.segment != "" {
		seg, err := load.ParseSegment(f.segment)
		if err != nil {
			return badInput(fmt.Errorf("--segment: %w", err))
		}
		opts.Segment = seg
	}
	if f.startAt != "" {
		at, err := time.Parse(time.RFC3339, f.startAt)
		if err != nil {
			return badInput(fmt.Errorf("--start-at %q: want an RFC 3339 time such as 2025-11-28T09:00:00Z", f.startAt))
		}
		if now := time.Now(); at.Before(now) {
			return badInput(fmt.Errorf("--start-at %s is %s in the past: segments started at a past time would not start together; give a time ahead",
				f.startAt, now.Sub(at).Round(time.Second)))
		}
		opts.StartAt = at
	}
	sc, err := scenarioFor(target, f)
	if err != nil {
		return badInput(err)
	}
	test, err := sc.Build()
	if err != nil {
		return badInput(err)
	}
	if err := checkOutputs(f.outputs); err != nil {
		return badInput(err)
	}
	if f.traceSample < 0 || f.traceSample > 1 {
		return badInput(fmt.Errorf("--trace-sample %v: want a share from 0 to 1", f.traceSample))
	}
	test.TraceSample = f.traceSample
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := test.Preflight(ctx); err != nil {
		return badInput(err)
	}
	stderr := cmd.ErrOrStderr()
	progress := newProgressPrinter(stderr) // listens for SIGUSR1 from here on
	defer progress.close()
	var final *finalScrape
	if f.metricsAddr != "" {
		reg := prometheus.NewRegistry()
		ln, err := net.Listen("tcp", f.metricsAddr)
		if err != nil {
			return badInput(fmt.Errorf("--metrics-addr: %w", err))
		}
		final = newFinalScrape(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: final, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }() // ends with Close below
		defer srv.Close()
		fmt.Fprintf(stderr, "relia load: live metrics on http://%s/metrics\n", ln.Addr())
		opts.Registerer, opts.KeepMetrics = reg, f.metricsHold > 0
	}
	opts.Progress = func(p load.Progress) { progress.print(p.Elapsed, p.Line()) }
	res, err := test.Run(ctx, opts)
	progress.close()
	if err != nil {
		return runtimeErr(err)
	}
	if final != nil && f.metricsHold > 0 {
		if !final.wait(ctx, f.metricsHold) {
			fmt.Fprintf(stderr, "relia load: no scrape read the final metrics within --metrics-hold %s\n", f.metricsHold)
		}
	}
	return finishLoad(cmd, res, f.outputs, f.format)
}

// finalScrape serves the live metrics and tells when a scrape that
// began after the run's end has been answered: that scrape read the
// final figures.
type finalScrape struct {
	h    http.Handler
	mu   sync.Mutex
	end  time.Time     // the run's end; zero while it runs
	read chan struct{} // closed by the first scrape after end
}

func newFinalScrape(h http.Handler) *finalScrape {
	return &finalScrape{h: h, read: make(chan struct{})}
}

// ServeHTTP serves a scrape.
func (f *finalScrape) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	began := time.Now()
	f.h.ServeHTTP(w, r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.end.IsZero() && !began.Before(f.end) {
		select {
		case <-f.read:
		default:
			close(f.read)
		}
	}
}

// wait marks the run's end and waits until a later scrape was answered,
// at most hold; it reports whether one was.
func (f *finalScrape) wait(ctx context.Context, hold time.Duration) bool {
	f.mu.Lock()
	f.end = time.Now()
	f.mu.Unlock()
	t := time.NewTimer(hold)
	defer t.Stop()
	select {
	case <-f.read:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// finishLoad writes a result's files and summary and turns its
// judgement into the exit code.
func finishLoad(cmd *cobra.Command, res *load.Result, o loadOutputs, format string) error {
	if err := writeOutput(o.out, res.WriteJSON); err != nil {
		return runtimeErr(err)
	}
	j := res.Judge()
	if o.html != "" {
		if err := writeLoadHTML(o.html, res, j); err != nil {
			return runtimeErr(err)
		}
	}
	if err := writeOutput(o.junit, func(w io.Writer) error { return res.WriteJUnit(w, j) }); err != nil {
		return runtimeErr(err)
	}
	if err := writeOutput(o.summaryExport, func(w io.Writer) error { return res.WriteSummaryExport(w, j) }); err != nil {
		return runtimeErr(err)
	}
	if o.remoteWrite != "" {
		c := &promrw.Client{URL: o.remoteWrite}
		if err := c.Push(cmd.Context(), res.RemoteWriteSeries()); err != nil {
			return runtimeErr(err)
		}
	}
	if o.otlp != "" {
		if err := exportOTLP(cmd.Context(), o.otlp, res); err != nil {
			return runtimeErr(err)
		}
	}
	if format == "json" {
		if err := res.WriteJSON(cmd.OutOrStdout()); err != nil {
			return runtimeErr(err)
		}
	} else if err := res.WriteSummary(cmd.OutOrStdout(), j); err != nil {
		return runtimeErr(err)
	}
	switch j.Result {
	case load.Inconclusive:
		return &exitError{code: exitInconclusive, err: errors.New("inconclusive: " + strings.Join(j.Reasons, "; "))}
	case load.Failed:
		return &exitError{code: exitFailed, err: errors.New(strings.Join(j.Reasons, "; "))}
	case load.Interrupted:
		return &exitError{code: exitAborted, err: errors.New("interrupted before the end of the profile")}
	}
	return nil
}

// checkOutputs refuses outputs that could not be written, before a run
// spends its time.
func checkOutputs(o loadOutputs) error {
	if o.remoteWrite != "" {
		if err := promrw.CheckURL(o.remoteWrite); err != nil {
			return fmt.Errorf("--remote-write %w", err)
		}
	}
	if o.otlp != "" {
		if err := promrw.CheckURL(o.otlp); err != nil {
			return fmt.Errorf("--otlp %w", err)
		}
	}
	return nil
}

// exportOTLP sends the result's OTLP metrics to url with the
// OpenTelemetry SDK's http/protobuf exporter, retrying for at most 30s.
func exportOTLP(ctx context.Context, url string, res *load.Result) error {
	exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithEndpointURL(url), otlpmetrichttp.WithTimeout(10*time.Second),
		otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: 5 * time.Second, MaxElapsedTime: 30 * time.Second}))
	if err != nil {
		return fmt.Errorf("otlp export to %s: %w", url, err)
	}
	err = exp.Export(ctx, res.OTLPMetrics())
	if serr := exp.Shutdown(ctx); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("otlp export to %s: %w", url, err)
	}
	return nil
}

// writeOutput creates the file path (nothing when path is "") and
// writes it with write.
func writeOutput(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isTerminal reports whether w is a character device, where a progress
// line that rewrites itself reads well.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newLoadMergeCmd() *cobra.Command {
	var outputs loadOutputs
	var format string
	cmd := &cobra.Command{
		Use:   "merge RESULT.json...",
		Short: "Merge the results of the segments of one test exactly, and judge its thresholds",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return badInput(fmt.Errorf("-o %q: want table or json", format))
			}
			var parts []*load.Result
			for _, p := range args {
				r, err := load.ReadResult(p)
				if err != nil {
					return badInput(err)
				}
				parts = append(parts, r)
			}
			merged, err := load.Merge(parts...)
			if err != nil {
				return badInput(err)
			}
			if err := checkOutputs(outputs); err != nil {
				return badInput(err)
			}
			return finishLoad(cmd, merged, outputs, format)
		},
	}
	addLoadOutputFlags(cmd, &outputs, "merged results")
	cmd.Flags().StringVarP(&format, "output", "o", "table", "stdout format: table or json")
	return cmd
}

func newLoadValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE",
		Short: "Check a scenario and exit (2 when it is invalid); sends nothing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			test, err := load.LoadFile(args[0])
			if err != nil {
				return badInput(err)
			}
			journeys := ""
			if n := len(test.Journeys()); n > 0 {
				journeys = fmt.Sprintf("%d journeys of ", n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %s model, %s%d requests, %s, %d thresholds\n",
				args[0], test.Model, journeys, len(test.Steps), test.Duration(), len(test.Thresholds))
			return nil
		},
	}
}

func newLoadSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of scenario files, for editors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := load.JSONSchema()
			if err != nil {
				return runtimeErr(err)
			}
			return writeOut(cmd, "", data)
		},
	}
}

// writeLoadHTML writes the run's self-contained HTML report, the page
// relia report re-renders from a results file.
func writeLoadHTML(path string, res *load.Result, j load.Judgement) error {
	page := loadreport.Page(res, j)
	page.Generated = time.Now()
	return writeHTMLFile(path, page)
}
