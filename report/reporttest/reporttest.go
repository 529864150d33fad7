// Package reporttest opens HTML reports in a real headless Chromium for
// tests: it loads a file, collects console errors and failed network
// requests, takes a screenshot, and evaluates JavaScript against the
// loaded page. The report package's tests use it, and so can any test
// that renders a report (load, experiment).
//
//	res := reporttest.OpenInChromium(t, path)
//	if len(res.ConsoleErrors)+len(res.FailedRequests) > 0 { t.Fatal(...) }
//	var n int
//	res.Eval(t, `document.querySelectorAll("svg.plot").length`, &n)
//	reporttest.SaveArtifact(t, "report.png", res.ScreenshotPNG)
//
// Chromium is Debian's /usr/bin/chromium (or "chromium" on PATH, or the
// binary named by RELIA_CHROMIUM). When it is missing the test is skipped,
// unless the CI environment variable is set: on CI a missing browser is a
// failure, so a broken image cannot pass by skipping.
package reporttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Options adjusts how OpenInChromium loads the page. The zero value is a
// 1280x900 viewport in the light colour scheme, with a minute for each
// step.
type Options struct {
	// Width and Height are the viewport in CSS pixels; 0 means 1280x900.
	// The screenshot covers the whole page, not only the viewport.
	Width, Height int
	// Dark emulates prefers-color-scheme: dark.
	Dark bool
	// Timeout bounds each step: loading the page, and taking the
	// screenshot (a tall report on a busy machine takes a while to
	// encode); 0 means a minute, for a browser that starts slowly beside
	// a test suite running on every core.
	Timeout time.Duration
}

// Result is what loading the page produced. The tab stays open until the
// test ends, so Eval can inspect it.
type Result struct {
	// URL is the address the page was loaded from.
	URL string
	// ConsoleErrors holds console.error calls, uncaught exceptions and
	// error entries of the browser log (a blocked or missing resource,
	// a content-security violation), each as "type: text (where)".
	ConsoleErrors []string
	// FailedRequests holds every request that failed or got a 4xx or 5xx
	// response, as "URL: reason".
	FailedRequests []string
	// Requests holds the URL of every request the page made, the page
	// itself included, in order: a self-contained page makes exactly one.
	Requests []string
	// ScreenshotPNG is a PNG of the whole page after it loaded.
	ScreenshotPNG []byte

	ctx context.Context
}

// ChromiumPath returns the browser to use, or "" when there is none. A
// RELIA_CHROMIUM that names no executable is none: the choice is not
// silently replaced by another browser.
func ChromiumPath() string {
	if p := os.Getenv("RELIA_CHROMIUM"); p != "" {
		if p, err := exec.LookPath(p); err == nil {
			return p
		}
		return ""
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	return ""
}

// RequireChromium returns the browser's path. Without one it skips the
// test, or fails it when the CI environment variable is set.
func RequireChromium(t testing.TB) string {
	t.Helper()
	p := ChromiumPath()
	if p != "" {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required on CI (CI is set) but was not found: install Debian's chromium (make test-deps) or set RELIA_CHROMIUM")
		return ""
	}
	t.Skip("skipping browser test: chromium not found (install Debian's chromium or set RELIA_CHROMIUM; on CI this is a failure)")
	return ""
}

// OpenInChromium loads the HTML file at path in a fresh headless Chromium
// with default Options. See OpenInChromiumWith.
func OpenInChromium(t testing.TB, path string) *Result {
	t.Helper()
	return OpenInChromiumWith(t, path, Options{})
}

// OpenInChromiumWith loads the HTML file at path in a fresh headless
// Chromium with its own profile directory, waits for the load event, and
// takes a full-page screenshot. Failing to start the browser or load the
// page fails the test; console errors and failed requests are returned
// for the test to judge. The browser stops when the test ends.
func OpenInChromiumWith(t testing.TB, path string, o Options) *Result {
	t.Helper()
	bin := RequireChromium(t)
	if o.Width == 0 {
		o.Width = 1280
	}
	if o.Height == 0 {
		o.Height = 900
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatalf("opening %s in chromium: %v", path, err)
	}
	res := &Result{URL: (&url.URL{Scheme: "file", Path: abs}).String()}

	profile, err := os.MkdirTemp("", "relia-chromium-")
	if err != nil {
		t.Fatalf("creating a chromium profile: %v", err)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(o.Width, o.Height),
	)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		// The browser's helpers may still write to the profile for a
		// moment after it stops.
		for range 50 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
	res.ctx = ctx

	var mu sync.Mutex
	urls := map[network.RequestID]string{}
	listen := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				res.ConsoleErrors = append(res.ConsoleErrors, fmt.Sprintf("console.%s: %s", e.Type, consoleArgs(e.Args)))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			res.ConsoleErrors = append(res.ConsoleErrors, fmt.Sprintf("exception: %s (%s:%d:%d)", text, d.URL, d.LineNumber+1, d.ColumnNumber+1))
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				res.ConsoleErrors = append(res.ConsoleErrors, fmt.Sprintf("log %s: %s (%s)", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			urls[e.RequestID] = e.Request.URL
			res.Requests = append(res.Requests, e.Request.URL)
		case *network.EventLoadingFailed:
			res.FailedRequests = append(res.FailedRequests, fmt.Sprintf("%s: %s", urls[e.RequestID], e.ErrorText))
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 {
				res.FailedRequests = append(res.FailedRequests, fmt.Sprintf("%s: HTTP %d", e.Response.URL, e.Response.Status))
			}
		}
	}

	runCtx, cancelRun := context.WithTimeout(ctx, o.Timeout)
	defer cancelRun()
	// The tab is opened first and the page loaded only once the listener
	// is in place, so no event of the page is missed.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium %s: %v", bin, err)
	}
	if err := chromedp.Listen(ctx, listen); err != nil {
		t.Fatalf("listening to chromium: %v", err)
	}
	if o.Dark {
		dark := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}
		if _, err := chromedp.Call(runCtx, emulation.SetEmulatedMedia, dark); err != nil {
			t.Fatalf("emulating the dark colour scheme: %v", err)
		}
	}
	if err := chromedp.Do(runCtx, chromedp.Navigate(res.URL)); err != nil {
		t.Fatalf("loading %s in chromium: %v", res.URL, err)
	}
	shotCtx, cancelShot := context.WithTimeout(ctx, o.Timeout)
	defer cancelShot()
	png, err := chromedp.Run(shotCtx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("taking a screenshot of %s: %v", res.URL, err)
	}
	res.ScreenshotPNG = png

	mu.Lock()
	defer mu.Unlock()
	res.ConsoleErrors = append([]string(nil), res.ConsoleErrors...)
	res.FailedRequests = append([]string(nil), res.FailedRequests...)
	res.Requests = append([]string(nil), res.Requests...)
	return res
}

// Eval evaluates a JavaScript expression in the loaded page and decodes
// its value (which must be JSON-serialisable) into out; a thrown
// exception or a value that does not decode fails the test.
func (r *Result) Eval(t testing.TB, expr string, out any) {
	t.Helper()
	if err := r.EvalErr(expr, out); err != nil {
		t.Fatalf("evaluating %q: %v", expr, err)
	}
}

// EvalErr is Eval returning the error, for tests that expect one.
func (r *Result) EvalErr(expr string, out any) error {
	if r.ctx == nil {
		return errors.New("no page is loaded")
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr))
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s: %w", raw, err)
	}
	return nil
}

// ArtifactDir is where tests save files worth keeping (screenshots): the
// directory named by RELIA_ARTIFACTS, created if needed, or else the
// test's temporary directory.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("RELIA_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("creating the artifact directory: %v", err)
	}
	return dir
}

// SaveArtifact writes data to name in ArtifactDir, logs the path and
// returns it. The test's name prefixes name so that artifacts of
// different tests do not overwrite each other.
func SaveArtifact(t testing.TB, name string, data []byte) string {
	t.Helper()
	prefix := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	path := filepath.Join(ArtifactDir(t), prefix+"-"+name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatalf("saving artifact: %v", err)
	}
	t.Logf("artifact: %s", path)
	return path
}

func consoleArgs(args []*runtime.RemoteObject) string {
	var parts []string
	for _, a := range args {
		switch {
		case len(a.Value) > 0:
			var s string
			if json.Unmarshal(a.Value, &s) == nil {
				parts = append(parts, s)
			} else {
				parts = append(parts, string(a.Value))
			}
		case a.Description != "":
			parts = append(parts, a.Description)
		default:
			parts = append(parts, string(a.Type))
		}
	}
	return strings.Join(parts, " ")
}
