package report_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/report/reporttest"
)

// chartState is what the browser says about one chart after layout.
type chartState struct {
	ID     string `json:"id"`
	Paths  []int  `json:"paths"`  // drawn points per series path (from data-points)
	Length []int  `json:"length"` // rendered length of each path, in user units
	Width  int    `json:"width"`  // the SVG's rendered width in CSS pixels
}

const chartStateJS = `Array.from(document.querySelectorAll("figure.chart")).map(f => {
  const svg = f.querySelector("svg.plot");
  const paths = Array.from(svg.querySelectorAll("g.series path:not(.dots)"));
  return {
    id: f.id,
    paths: paths.map(p => Number(p.dataset.points)),
    length: paths.map(p => Math.round(p.getTotalLength())),
    width: Math.round(svg.getBoundingClientRect().width),
  };
})`

// TestReportInChromium loads the sample report in headless Chromium, in
// the light and the dark scheme: it must load without a single console
// error or network request beyond the file itself, draw every series, and
// answer hovering with a tooltip. Screenshots are saved as artifacts.
func TestReportInChromium(t *testing.T) {
	t.Parallel()
	reporttest.RequireChromium(t)
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := samplePage().WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	for _, dark := range []bool{false, true} {
		name := "light"
		if dark {
			name = "dark"
		}
		t.Run(name, func(t *testing.T) {
			res := reporttest.OpenInChromiumWith(t, path, reporttest.Options{Dark: dark, Timeout: time.Minute})
			reporttest.SaveArtifact(t, "report.png", res.ScreenshotPNG)
			if len(res.ConsoleErrors) > 0 {
				t.Errorf("console errors:\n%s", strings.Join(res.ConsoleErrors, "\n"))
			}
			if len(res.FailedRequests) > 0 {
				t.Errorf("failed requests:\n%s", strings.Join(res.FailedRequests, "\n"))
			}
			if len(res.Requests) != 1 || res.Requests[0] != res.URL {
				t.Errorf("the page made requests %q, want only itself (%s)", res.Requests, res.URL)
			}
			if len(res.ScreenshotPNG) < 8 || string(res.ScreenshotPNG[1:4]) != "PNG" {
				t.Errorf("screenshot is not a PNG (%d bytes)", len(res.ScreenshotPNG))
			}

			var charts []chartState
			res.Eval(t, chartStateJS, &charts)
			// Four recorder charts and a distribution, two budget charts,
			// the queue chart.
			if len(charts) != 8 {
				t.Fatalf("%d charts in the page, want 8", len(charts))
			}
			for _, c := range charts {
				if len(c.Paths) == 0 {
					t.Errorf("chart %s has no series paths", c.ID)
				}
				for i, n := range c.Paths {
					if n < 2 {
						t.Errorf("chart %s series %d draws %d points", c.ID, i, n)
					}
					if c.Length[i] <= 0 {
						t.Errorf("chart %s series %d has a rendered length of %d", c.ID, i, c.Length[i])
					}
				}
				if c.Width < 600 {
					t.Errorf("chart %s is %d px wide", c.ID, c.Width)
				}
			}

			// Nothing the user data holds ran or became markup.
			var injected bool
			res.Eval(t, `document.querySelectorAll("section script, img, b").length > 0 || typeof window.alerted !== "undefined"`, &injected)
			if injected {
				t.Error("user data became markup")
			}

			// Hovering the middle of the latency chart shows its values.
			var tip string
			res.Eval(t, `(() => {
  const fig = document.querySelector("figure.chart");
  const svg = fig.querySelector("svg.plot"), r = svg.getBoundingClientRect();
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width / 2, clientY: r.top + r.height / 2, bubbles: true}));
  const tip = fig.querySelector(".tip");
  return tip.hidden ? "" : tip.innerText;
})()`, &tip)
			for _, want := range []string{"00:5", "p50", "p99", "ms"} {
				if !strings.Contains(tip, want) {
					t.Errorf("tooltip %q lacks %q", tip, want)
				}
			}

			// The log-scale button switches the latency chart's axis.
			var scale struct {
				Before, After   []string
				Pressed         string
				LogTicks        []string
				PhaseLabels     int
				DistributionTip string
			}
			res.Eval(t, `(() => {
  const fig = document.querySelector("figure.chart");
  const shown = () => Array.from(fig.querySelectorAll("g.layer")).filter(g => getComputedStyle(g).display !== "none").map(g => g.dataset.scale);
  const before = shown();
  fig.querySelector("button.scale-toggle").click();
  const after = shown();
  const log = fig.querySelector('g.layer[data-scale="log"]');
  const dist = Array.from(document.querySelectorAll("figure.chart")).find(f => f.querySelector(".chart-title").textContent === "Latency distribution");
  const svg = dist.querySelector("svg.plot"), r = svg.getBoundingClientRect();
  svg.dispatchEvent(new MouseEvent("mousemove", {clientX: r.left + r.width * 0.6, clientY: r.top + r.height / 2, bubbles: true}));
  return {
    before, after,
    pressed: fig.querySelector("button.scale-toggle").getAttribute("aria-pressed"),
    logTicks: Array.from(log.querySelectorAll("text.ylabel")).map(e => e.textContent),
    phaseLabels: fig.querySelectorAll("g.phase text").length,
    distributionTip: dist.querySelector(".tip").innerText,
  };
})()`, &scale)
			if strings.Join(scale.Before, ",") != "linear" || strings.Join(scale.After, ",") != "log" || scale.Pressed != "true" {
				t.Errorf("log-scale button: layers shown %q, then %q (pressed %q); want linear, then log", scale.Before, scale.After, scale.Pressed)
			}
			if !slices.Contains(scale.LogTicks, "10 ms") || !slices.Contains(scale.LogTicks, "1 s") {
				t.Errorf("log axis ticks %q, want powers of ten such as 10 ms and 1 s", scale.LogTicks)
			}
			if scale.PhaseLabels != 3 {
				t.Errorf("%d phase labels on the latency chart, want 3", scale.PhaseLabels)
			}
			if !strings.HasPrefix(scale.DistributionTip, "p9") || !strings.Contains(scale.DistributionTip, "whole run") {
				t.Errorf("distribution tooltip %q, want a percentile and the curves", scale.DistributionTip)
			}
		})
	}
}

// TestOpenInChromiumReportsErrors checks the checker: a page with a
// script error, a console.error and a missing image must be reported, or
// the clean result of the real report would prove nothing.
func TestOpenInChromiumReportsErrors(t *testing.T) {
	t.Parallel()
	reporttest.RequireChromium(t)
	path := filepath.Join(t.TempDir(), "broken.html")
	page := `<!DOCTYPE html><html><head><link rel="icon" href="data:,"><title>x</title></head><body>
<img src="missing.png"><script>console.error("boom"); undefinedFunction();</script></body></html>`
	if err := os.WriteFile(path, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	res := reporttest.OpenInChromium(t, path)
	joined := strings.Join(res.ConsoleErrors, "\n")
	for _, want := range []string{"boom", "undefinedFunction"} {
		if !strings.Contains(joined, want) {
			t.Errorf("console errors %q lack %q", res.ConsoleErrors, want)
		}
	}
	if len(res.FailedRequests) != 1 || !strings.Contains(res.FailedRequests[0], "missing.png") {
		t.Errorf("failed requests %q, want missing.png", res.FailedRequests)
	}
	var got int
	res.Eval(t, `document.images.length`, &got)
	if got != 1 {
		t.Errorf("Eval: %d images, want 1", got)
	}
	if err := res.EvalErr(`(() => { throw new Error("nope") })()`, nil); err == nil {
		t.Error("EvalErr of a throwing expression: no error")
	}
}
