package llmload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/report/reporttest"
)

// TestPageInChromium loads a run's report in headless Chromium: no
// console error, no request beyond the page, and the time to first token
// and goodput charts drawn with their series, showing the figures the
// summary prints.
func TestPageInChromium(t *testing.T) {
	t.Parallel()
	reporttest.RequireChromium(t)
	start := time.Unix(1_700_000_000, 0)
	o := Options{URL: "http://127.0.0.1:1/v1/chat/completions", API: APIOpenAI, Concurrency: 1, Duration: 6 * time.Second,
		Goodput: Objectives{TTFT: 40 * time.Millisecond}}
	res := newResult(o)
	res.Start, res.End = start, start.Add(6*time.Second)
	for _, s := range samples(40, start) {
		res.record(&s, o.Goodput)
	}
	// Every rate chart has data: 40 requests, 32 of them well ended,
	// 9 good (see TestMergeOfSegmentsEqualsOneRun).
	sums := map[string]float64{}
	for _, c := range res.charts() {
		for _, s := range c.Series {
			for _, p := range s.Points {
				sums[s.Name] += p.V
			}
		}
	}
	if sums["goodput"] <= 0 || sums["requests ended"] <= sums["goodput"] || sums["output tokens"] <= sums["requests ended"] {
		t.Errorf("rates summed over the charts: %v", sums)
	}
	path := filepath.Join(t.TempDir(), "llm.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Page(res.Judge()).WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	page := reporttest.OpenInChromiumWith(t, path, reporttest.Options{Timeout: time.Minute})
	reporttest.SaveArtifact(t, "llm.png", page.ScreenshotPNG)
	if len(page.ConsoleErrors) > 0 || len(page.FailedRequests) > 0 || len(page.Requests) != 1 {
		t.Errorf("console errors %q, failed requests %q, requests %q", page.ConsoleErrors, page.FailedRequests, page.Requests)
	}
	var charts []struct {
		Title  string `json:"title"`
		Series []int  `json:"series"`
	}
	page.Eval(t, `Array.from(document.querySelectorAll("figure.chart")).map(f => ({
  title: f.textContent,
  series: Array.from(f.querySelectorAll("svg.plot g.series path:not(.dots)")).map(p => Number(p.dataset.points)),
}))`, &charts)
	drawn := map[string]bool{}
	for _, c := range charts {
		for _, title := range []string{"Time to first token", "Goodput", "Output tokens per second"} {
			if strings.Contains(c.Title, title) && len(c.Series) >= 1 && c.Series[0] >= 2 {
				drawn[title] = true
			}
		}
	}
	if len(drawn) != 3 {
		t.Errorf("charts drawn with series: %v (of %d charts)", drawn, len(charts))
	}
	var text string
	page.Eval(t, `document.body.innerText`, &text)
	p50 := res.trendValue("llm_time_to_first_token", "p", 50)
	if !strings.Contains(text, p50) {
		t.Errorf("the page does not show TTFT p50 %s", p50)
	}
}
