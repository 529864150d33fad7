package report_test

import (
	"bytes"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/internal/config/configtest"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

func render(t *testing.T, p *report.Page) string {
	t.Helper()
	var buf bytes.Buffer
	if err := p.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// TestGolden pins the whole output of the sample page; run with -update
// after a deliberate change and look at the diff (and the browser test's
// screenshot).
func TestGolden(t *testing.T) {
	t.Parallel()
	got := render(t, samplePage())
	configtest.Golden(t, "testdata/sample.golden.html", []byte(got))
	if again := render(t, samplePage()); again != got {
		t.Error("rendering the same page twice gave different bytes")
	}
}

// TestEscaping checks that user data (titles, series and window names,
// cells, text) can never become markup or script.
func TestEscaping(t *testing.T) {
	t.Parallel()
	const evil = `<script>alert(1)</script>`
	attr := `"><svg onload=alert(1)>`
	p := &report.Page{
		Title:    evil,
		Subtitle: attr,
		Sections: []report.Section{{
			Title: evil,
			Text:  evil,
			Stats: []report.Stat{{Label: evil, Value: attr, Note: evil}},
			Charts: []report.Chart{{
				Title:   attr,
				Unit:    evil,
				Series:  []report.Series{{Name: evil, Points: []report.Point{{T: t0, V: 1}, {T: t0.Add(time.Second), V: 2}}}, {Name: attr + "</title>", Points: []report.Point{{T: t0, V: 3}}}},
				Windows: []report.Window{{Label: evil + attr, From: t0}},
			}},
			Tables: []report.Table{{Title: evil, Columns: []string{evil, attr}, Rows: [][]string{{evil, attr}}}},
		}},
	}
	out := render(t, p)
	if n := strings.Count(out, "<script"); n != 1 {
		t.Errorf("%d <script elements, want only the page's own", n)
	}
	for _, bad := range []string{"<svg onload", "alert(1)</script>", "</title>\"", `"><svg`} {
		if strings.Contains(out, bad) {
			t.Errorf("output holds %q unescaped", bad)
		}
	}
	if !strings.Contains(out, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the escaped title is missing")
	}
	// The tooltip data carries the names too, escaped as an attribute.
	m := regexp.MustCompile(`data-chart="([^"]*)"`).FindStringSubmatch(out)
	if m == nil || strings.ContainsAny(m[1], "<>") {
		t.Errorf("tooltip data attribute not escaped: %q", m)
	}
}

// TestSelfContained checks that the page refers to nothing outside itself:
// no scripts, styles, fonts or images by URL.
func TestSelfContained(t *testing.T) {
	t.Parallel()
	out := render(t, samplePage())
	// User data is escaped (TestEscaping), so every "<" left starts a tag
	// of the page's own.
	for _, tag := range regexp.MustCompile(`<[a-zA-Z][^>]*>`).FindAllString(out, -1) {
		if regexp.MustCompile(`(?i)\s(src|srcset|action|formaction|poster|background)\s*=`).MatchString(tag) {
			t.Errorf("tag loads a resource: %s", tag)
		}
		for _, m := range regexp.MustCompile(`(?i)\s(?:href|xlink:href)="([^"]*)"`).FindAllStringSubmatch(tag, -1) {
			if !strings.HasPrefix(m[1], "#") && m[1] != "data:," {
				t.Errorf("tag links outside the page: %s", tag)
			}
		}
	}
	style := out[strings.Index(out, "<style>"):strings.Index(out, "</style>")]
	script := out[strings.LastIndex(out, "<script>"):strings.LastIndex(out, "</script>")]
	for _, bad := range []string{"url(", "@import", "@font-face"} {
		if strings.Contains(style, bad) {
			t.Errorf("the style sheet uses %s", bad)
		}
	}
	for _, bad := range []string{"fetch(", "XMLHttpRequest", "import(", "src", "WebSocket", "eval("} {
		if strings.Contains(script, bad) {
			t.Errorf("the script uses %s", bad)
		}
	}
}

func TestWriteHTMLRejectsInvalidPages(t *testing.T) {
	t.Parallel()
	pt := func(sec int, v float64) report.Point {
		return report.Point{T: t0.Add(time.Duration(sec) * time.Second), V: v}
	}
	chart := func(c report.Chart) *report.Page {
		return &report.Page{Sections: []report.Section{{Title: "s", Charts: []report.Chart{c}}}}
	}
	dist := func(s report.PercentileSeries) *report.Page {
		return &report.Page{Sections: []report.Section{{Title: "s", Distributions: []report.PercentileChart{{Title: "x", Series: []report.PercentileSeries{s}}}}}}
	}
	table := func(tb report.Table) *report.Page {
		return &report.Page{Sections: []report.Section{{Title: "s", Tables: []report.Table{tb}}}}
	}
	tests := []struct {
		name string
		page *report.Page
		want string
	}{
		{"points out of order", chart(report.Chart{Series: []report.Series{{Name: "a", Points: []report.Point{pt(2, 1), pt(1, 1)}}}}), `series "a": point 1`},
		{"infinite value", chart(report.Chart{Series: []report.Series{{Name: "a", Points: []report.Point{pt(1, math.Inf(1))}}}}), "infinite"},
		{"negative step", chart(report.Chart{Series: []report.Series{{Name: "a", Step: -time.Second}}}), "negative step"},
		{"unknown reduce", chart(report.Chart{Series: []report.Series{{Name: "a", Reduce: 9}}}), "unknown reduce"},
		{"bad colour", chart(report.Chart{Series: []report.Series{{Name: "a", Color: "red; background: url(x)"}}}), "colour"},
		{"window backwards", chart(report.Chart{Windows: []report.Window{{Label: "w", From: t0.Add(time.Second), To: t0}}}), `window "w": ends before`},
		{"window without start", chart(report.Chart{Windows: []report.Window{{Label: "w"}}}), "no start"},
		{"row status unknown", table(report.Table{Rows: [][]string{{"a"}}, RowStatus: []string{"ok"}}), `row 1: unknown status "ok"`},
		{"more statuses than rows", table(report.Table{Rows: [][]string{{"a"}}, RowStatus: []string{"pass", "fail"}}), "2 row statuses for 1 rows"},
		{"row too wide", table(report.Table{Columns: []string{"a"}, Rows: [][]string{{"1", "2"}}}), "row 1: 2 cells for 1 columns"},
		{"stat status unknown", &report.Page{Sections: []report.Section{{Stats: []report.Stat{{Label: "g", Status: "good"}}}}}, `stat "g": unknown status`},
		{"end before start", &report.Page{Start: t0, End: t0}, "page end"},
		{"unknown scale", chart(report.Chart{Scale: 7}), "unknown scale 7"},
		{"line without a value", chart(report.Chart{Lines: []report.Line{{Label: "l", V: math.NaN()}}}), `line "l": value NaN`},
		{"window colour", chart(report.Chart{Windows: []report.Window{{Label: "w", From: t0, Color: "url(x)"}}}), `window "w": colour`},
		{"phase backwards", &report.Page{Phases: []report.Window{{Label: "p", From: t0.Add(time.Second), To: t0}}}, `phases: window "p": ends before`},
		{"percentile out of range", dist(report.PercentileSeries{Name: "d", Points: []report.PercentilePoint{{P: 1.5, V: 1}}}), `distribution 1 ("x"): series "d": point 0: percentile 1.5`},
		{"percentiles out of order", dist(report.PercentileSeries{Name: "d", Points: []report.PercentilePoint{{P: 0.9, V: 1}, {P: 0.5, V: 1}}}), "point 1: percentile 0.5 is below"},
		{"percentile value NaN", dist(report.PercentileSeries{Name: "d", Points: []report.PercentilePoint{{P: 0.5, V: math.NaN()}}}), "point 0: value NaN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			err := tt.page.WriteHTML(&buf)
			if !errors.Is(err, report.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteHTML: %v; want ErrInvalid mentioning %q", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Errorf("%d bytes written for an invalid page", buf.Len())
			}
		})
	}
}

func TestWriteHTMLEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		page    *report.Page
		want    []string
		wantNot []string
	}{
		{"empty page", &report.Page{}, []string{"<title>relia report</title>", "</html>"}, []string{"<nav", "<figure", "Time axes"}},
		{"chart without data", &report.Page{Sections: []report.Section{{Charts: []report.Chart{{Title: "nothing"}}}}},
			[]string{`class="empty"`, ">no data<", "<h2>Section 1</h2>"}, []string{"<nav"}},
		{"all points NaN", &report.Page{Sections: []report.Section{{Charts: []report.Chart{{Series: []report.Series{{Name: "x", Points: []report.Point{{T: t0, V: math.NaN()}}}}}}}}},
			[]string{">no data<", `data-points="0"`}, nil},
		{"short rows are padded", &report.Page{Sections: []report.Section{{Tables: []report.Table{{Columns: []string{"a", "b", "c"}, Rows: [][]string{{"1"}}, RowStatus: []string{"pass"}}}}}},
			[]string{`<tr class="pass"><td>1</td><td></td><td></td></tr>`}, nil},
		{"paragraphs", &report.Page{Sections: []report.Section{{Text: "one\r\n\r\ntwo\nstill two\n\n\n"}}}, []string{"<p>one</p>", "<p>two\nstill two</p>"}, nil},
		{"generated in UTC", &report.Page{Generated: time.Date(2025, 1, 2, 12, 0, 0, 0, time.FixedZone("X", 3600))}, []string{"Generated 2025-01-02 11:00:00 UTC."}, nil},
		{"toc with two sections", &report.Page{Sections: []report.Section{{Title: "a"}, {Title: "b"}}}, []string{`<nav><ul><li><a href="#s1">a</a></li><li><a href="#s2">b</a></li></ul></nav>`}, nil},
		{"fixed and palette colours", &report.Page{Sections: []report.Section{{Charts: []report.Chart{{Series: []report.Series{
			{Name: "a", Color: "#123abc", Points: []report.Point{{T: t0, V: 1}}}, {Name: "b", Color: "gray", Points: []report.Point{{T: t0, V: 1}}}}}}}}},
			[]string{`stroke="#123abc"`, `class="c7 dots"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := render(t, tt.page)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output holds %q", w)
				}
			}
		})
	}
}

// hourRecorder is a one-hour run at 1 s buckets, 20 requests a second,
// with latency spikes and errors.
func hourRecorder(tb testing.TB) *outcome.Recorder {
	tb.Helper()
	rec, err := outcome.NewRecorder(outcome.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	for s := range 3600 {
		for i := range 20 {
			o := outcome.Outcome{Start: t0.Add(time.Duration(s)*time.Second + time.Duration(i)*50*time.Millisecond), Latency: time.Duration(10+(s*7+i*13)%40) * time.Millisecond, Status: 200}
			if s%600 == 300 && i == 0 {
				o.Latency = 3 * time.Second
			}
			if s%97 == 0 && i < 3 {
				o.Status = 503
			}
			o.Class = outcome.ClassifyResponse(o.Status, nil)
			rec.Record(o)
		}
	}
	return rec
}

// TestHourLongRun renders the standard charts of a one-hour run at 1 s
// buckets: every series is thinned to at most one point per pixel column,
// the 3 s spikes survive, and the file stays small.
func TestHourLongRun(t *testing.T) {
	t.Parallel()
	rec := hourRecorder(t)
	charts := report.RecorderCharts(rec, time.Time{}, time.Time{})
	for _, c := range charts {
		for _, s := range c.Series {
			if len(s.Points) != 3600 {
				t.Fatalf("%s/%s: %d points, want 3600", c.Title, s.Name, len(s.Points))
			}
		}
	}
	out := render(t, &report.Page{Title: "one hour", Sections: []report.Section{{Charts: charts}}})

	counts := regexp.MustCompile(`data-points="(\d+)"`).FindAllStringSubmatch(out, -1)
	// Latency (3 series) and its max (1) on a linear and a log axis,
	// throughput (ok, failed) and errors (status).
	if len(counts) != 2*(3+1)+2+1 {
		t.Fatalf("%d series paths, want 11", len(counts))
	}
	paths := regexp.MustCompile(` d="([^"]*)"`).FindAllStringSubmatch(out, -1)
	for _, p := range paths {
		if n := strings.Count(p[1], "M") + strings.Count(p[1], "L") + strings.Count(p[1], "H"); n > 1000 || n < 400 {
			t.Errorf("a path draws %d points, want at most 1000 (and not thinned to nothing)", n)
		}
	}
	// The max latency line keeps the six 3 s spikes: the axis reaches 3 s
	// and the tooltip data holds them.
	if !regexp.MustCompile(`>[34](\.0)? s</text>`).MatchString(out) {
		t.Error("the latency axis does not reach the 3 s spikes")
	}
	if n := strings.Count(out, ",3000.32"); n < 6 {
		t.Errorf("%d spikes in the tooltip data, want 6", n)
	}
	if len(out) > 1<<20 {
		t.Errorf("a one-hour report is %d bytes, want under 1 MiB", len(out))
	}
	t.Logf("one-hour report: %d bytes", len(out))
}

func BenchmarkWriteHTMLHour(b *testing.B) {
	rec := hourRecorder(b)
	b.ReportAllocs()
	var size int
	for b.Loop() {
		p := report.Page{Sections: []report.Section{{Charts: report.RecorderCharts(rec, time.Time{}, time.Time{})}}}
		var buf bytes.Buffer
		if err := p.WriteHTML(&buf); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes/report")
}
