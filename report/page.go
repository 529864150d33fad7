package report

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"time"
)

// Page is one self-contained HTML report: a title, some metadata and a
// list of sections. Every time chart on the page shares one time axis, so
// a fault window lines up across latency, throughput and error charts.
type Page struct {
	// Title heads the page and names the browser tab.
	Title string
	// Subtitle is one line under the title: the scenario, the target, the
	// seed. Empty means none.
	Subtitle string
	// Generated is when the report was made; it is printed in UTC. The
	// zero time prints nothing, so that tests and golden files stay
	// deterministic.
	Generated time.Time
	// Start is the zero of every time axis: charts show elapsed time
	// (mm:ss) from it, and points before it are not drawn. The zero time
	// means the earliest point or window on the page.
	Start time.Time
	// End is the right edge of every time axis; points after it are not
	// drawn. The zero time means the latest point or window end on the
	// page.
	End time.Time
	// Phases are the consecutive named spans of a run (baseline, spike,
	// recovery). Every time chart of the page marks them, with their
	// names above the plot, so that a reader can tell on any chart which
	// phase a spike belongs to. A zero To means until the end of the axis.
	Phases []Window
	// Sections are rendered in order; with more than one the page opens
	// with a table of contents.
	Sections []Section
}

// Section is a titled part of the page: an explanation, headline figures,
// charts and tables, rendered in that order.
type Section struct {
	// Title heads the section and its entry in the table of contents.
	Title string
	// Text is plain text; blank lines separate paragraphs. It is not
	// interpreted as HTML or Markdown.
	Text string
	// Stats are headline figures shown as tiles: a grade, an availability,
	// a budget spent.
	Stats []Stat
	// Charts are time charts on the page's shared time axis.
	Charts []Chart
	// Distributions are percentile charts (latency by percentile), drawn
	// after the time charts.
	Distributions []PercentileChart
	// XYCharts are values against a quantity other than time (throughput
	// by concurrency), drawn after the distributions.
	XYCharts []XYChart
	// Tables follow the charts.
	Tables []Table
}

// Stat is one headline figure, such as the scorecard grade.
type Stat struct {
	// Label names the figure ("Grade", "Availability").
	Label string
	// Value is the figure as it should read ("B", "99.95%").
	Value string
	// Note is a short line under the value ("target 99.9%"); empty means
	// none.
	Note string
	// Status colours the tile: StatusPass, StatusFail, StatusWarn or ""
	// for neutral.
	Status string
}

// Chart is a time chart: lines on the page's shared time axis over a y
// axis from zero (or below, for negative values) to a round maximum, or a
// logarithmic one, with shaded windows and reference lines.
type Chart struct {
	// Title heads the chart.
	Title string
	// Unit is the unit of every series' values. "ms" and "s" label the
	// axis in ms or s, whichever reads better; other units ("req/s", "%",
	// "B") are printed after the value, with k and M prefixes for large
	// values. Empty means plain numbers.
	Unit string
	// Series are the lines, drawn in order; the legend lists them.
	Series []Series
	// Windows are shaded, labelled bands such as faults.
	Windows []Window
	// Lines are horizontal reference lines: an objective, a threshold.
	// A line near the data (up to twice its top on a linear axis, a
	// hundred times on a log one) stretches the axis to itself; one
	// further up is named at the top edge with an arrow rather than
	// flatten the data.
	Lines []Line
	// Scale is the y axis the chart opens with: Linear (the zero value)
	// or Log.
	Scale Scale
	// ScaleToggle adds a button that switches the y axis between linear
	// and log in the browser; both are drawn, so the printed page shows
	// the one on screen.
	ScaleToggle bool
	// Note is one line under the chart that says how it was drawn (what a
	// point is, how partial buckets count). Empty means none.
	Note string
}

// Scale is how a y axis maps values to heights.
type Scale uint8

const (
	// Linear starts at zero (or below it for negative values) and ends
	// at a round value.
	Linear Scale = iota
	// Log spaces powers of ten evenly, so a 5 ms median and a 2 s tail
	// both read. Values at or below zero sit on the bottom edge.
	Log
	numScale
)

// Line is a horizontal reference line across a chart, such as a latency
// threshold or an objective.
type Line struct {
	// Label names the line; it is printed at its right end.
	Label string
	// V is the value, in the chart's unit.
	V float64
	// Color is a palette name or "#rrggbb"; empty is the axis colour.
	Color string
}

// Series is one line of a chart.
//
// A series has a gap, and its line a break, wherever it has no data: at a
// point whose value is NaN, and between two points further apart than
// 1.5 times Step. Gaps are never drawn as zero, so "no requests finished"
// is not mistaken for "latency was zero"; a series for which no data means
// zero (a request rate) gives the zero points itself.
//
// A series with more points than the plot has pixel columns (872) is
// reduced to one point per column before drawing, by Reduce, so a
// one-hour run at one point a second stays a small file.
type Series struct {
	// Name labels the line in the legend and the hover tooltip.
	Name string
	// Points are the values in time order (equal times are allowed).
	Points []Point
	// Step is the spacing of the points, such as a recorder's bucket
	// width; a wider spacing between two points is a gap. Zero means the
	// smallest spacing in the series.
	Step time.Duration
	// Reduce says how points that share a pixel column are combined when
	// the series is too long to draw every point. The zero value keeps
	// the highest, so that a latency spike is never hidden.
	Reduce Reduce
	// Color is a palette name ("blue", "orange", "green", "red",
	// "purple", "brown", "pink", "grey", "teal", "gold", "navy",
	// "olive", "maroon"), which follows the light and dark themes, or a fixed
	// "#rrggbb". Empty picks the palette colour by the series' position
	// in the chart.
	Color string
	// Steps draws each point as a level that holds until the next point
	// (the last one for Step), as a count per time bucket is: flat over
	// the bucket, not a slope between bucket starts.
	Steps bool
}

// Point is one value of a series at a time.
type Point struct {
	T time.Time
	V float64
}

// Window is a shaded band across a chart with a label above it, such as
// the span of a fault.
type Window struct {
	// Label names the band; it is also its hover title.
	Label string
	// From and To bound the band. A zero To means until the end of the
	// time axis, for a fault still active when the report was made.
	From, To time.Time
	// Color is a palette name or "#rrggbb". Empty gives every distinct
	// label on the page a colour of its own, the same on every chart, in
	// the order the labels first appear.
	Color string
}

// Table is a plain table whose rows may be marked pass or fail, such as an
// SLO or threshold table.
type Table struct {
	// Title is the table's caption; empty means none.
	Title string
	// Columns are the header cells. Rows may be shorter (the rest is
	// blank) but not longer.
	Columns []string
	// Rows are the body cells, as text.
	Rows [][]string
	// RowStatus colours row i by RowStatus[i]: StatusPass, StatusFail,
	// StatusWarn, or "" for none. It may be shorter than Rows or nil.
	RowStatus []string
}

// Row and stat statuses. They are plain strings so that callers can write
// them as literals.
const (
	StatusPass = "pass"
	StatusFail = "fail"
	StatusWarn = "warn"
)

// Reduce is how a long series' points that share a pixel column are
// combined into one.
type Reduce uint8

const (
	// ReduceMax keeps the point with the highest value: spikes stay
	// visible. The default, for latencies and error counts.
	ReduceMax Reduce = iota
	// ReduceMean draws the mean of the points at their mean time, for
	// rates whose average over the column is the honest figure.
	ReduceMean
	// ReduceMin keeps the point with the lowest value, for series where a
	// dip is the event (available capacity, healthy replicas).
	ReduceMin
	numReduce
)

// ErrInvalid is wrapped by every error about a Page that cannot be
// rendered as given.
var ErrInvalid = errors.New("invalid report")

var hexColor = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// palette maps colour names to the CSS classes whose colours follow the
// light and dark themes; the order is the order of automatic colours.
var palette = []string{"blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "teal", "gold", "navy", "olive", "maroon"}

func paletteIndex(name string) int {
	if name == "gray" {
		name = "grey"
	}
	for i, n := range palette {
		if n == name {
			return i
		}
	}
	return -1
}

func validStatus(s string) bool {
	return s == "" || s == StatusPass || s == StatusFail || s == StatusWarn
}

// validColor checks a colour field: empty, a palette name or #rrggbb.
func validColor(c string) error {
	if c != "" && paletteIndex(c) < 0 && !hexColor.MatchString(c) {
		return fmt.Errorf("colour %q is neither a palette name nor #rrggbb", c)
	}
	return nil
}

func validLines(lines []Line) error {
	for _, l := range lines {
		if math.IsInf(l.V, 0) || math.IsNaN(l.V) {
			return fmt.Errorf("line %q: value %v", l.Label, l.V)
		}
		if err := validColor(l.Color); err != nil {
			return fmt.Errorf("line %q: %w", l.Label, err)
		}
	}
	return nil
}

func validWindows(ws []Window) error {
	for _, w := range ws {
		if w.From.IsZero() {
			return fmt.Errorf("window %q: no start", w.Label)
		}
		if !w.To.IsZero() && w.To.Before(w.From) {
			return fmt.Errorf("window %q: ends before it starts", w.Label)
		}
		if err := validColor(w.Color); err != nil {
			return fmt.Errorf("window %q: %w", w.Label, err)
		}
	}
	return nil
}

// validate reports the first thing in p that cannot be rendered, naming
// where it is, so that a caller's bug shows as an error rather than as a
// silently wrong chart.
func (p *Page) validate() error {
	if !p.Start.IsZero() && !p.End.IsZero() && !p.End.After(p.Start) {
		return fmt.Errorf("%w: page end %s is not after its start %s", ErrInvalid, p.End, p.Start)
	}
	if err := validWindows(p.Phases); err != nil {
		return fmt.Errorf("%w: phases: %w", ErrInvalid, err)
	}
	for si, s := range p.Sections {
		where := fmt.Sprintf("section %d (%q)", si+1, s.Title)
		for _, st := range s.Stats {
			if !validStatus(st.Status) {
				return fmt.Errorf("%w: %s: stat %q: unknown status %q", ErrInvalid, where, st.Label, st.Status)
			}
		}
		for ci, c := range s.Charts {
			if err := c.validate(); err != nil {
				return fmt.Errorf("%w: %s: chart %d (%q): %w", ErrInvalid, where, ci+1, c.Title, err)
			}
		}
		for ci, c := range s.Distributions {
			if err := c.validate(); err != nil {
				return fmt.Errorf("%w: %s: distribution %d (%q): %w", ErrInvalid, where, ci+1, c.Title, err)
			}
		}
		for ci, c := range s.XYCharts {
			if err := c.validate(); err != nil {
				return fmt.Errorf("%w: %s: XY chart %d (%q): %w", ErrInvalid, where, ci+1, c.Title, err)
			}
		}
		for ti, t := range s.Tables {
			if err := t.validate(); err != nil {
				return fmt.Errorf("%w: %s: table %d (%q): %w", ErrInvalid, where, ti+1, t.Title, err)
			}
		}
	}
	return nil
}

func (c *Chart) validate() error {
	if c.Scale >= numScale {
		return fmt.Errorf("unknown scale %d", c.Scale)
	}
	for _, s := range c.Series {
		if s.Step < 0 {
			return fmt.Errorf("series %q: negative step %s", s.Name, s.Step)
		}
		if s.Reduce >= numReduce {
			return fmt.Errorf("series %q: unknown reduce %d", s.Name, s.Reduce)
		}
		if err := validColor(s.Color); err != nil {
			return fmt.Errorf("series %q: %w", s.Name, err)
		}
		for i, pt := range s.Points {
			if math.IsInf(pt.V, 0) {
				return fmt.Errorf("series %q: point %d: infinite value", s.Name, i)
			}
			if i > 0 && pt.T.Before(s.Points[i-1].T) {
				return fmt.Errorf("series %q: point %d at %s is before the one ahead of it", s.Name, i, pt.T.Format(time.RFC3339Nano))
			}
		}
	}
	if err := validWindows(c.Windows); err != nil {
		return err
	}
	return validLines(c.Lines)
}
func (t *Table) validate() error {
	if len(t.RowStatus) > len(t.Rows) {
		return fmt.Errorf("%d row statuses for %d rows", len(t.RowStatus), len(t.Rows))
	}
	for i, st := range t.RowStatus {
		if !validStatus(st) {
			return fmt.Errorf("row %d: unknown status %q", i+1, st)
		}
	}
	if len(t.Columns) > 0 {
		for i, r := range t.Rows {
			if len(r) > len(t.Columns) {
				return fmt.Errorf("row %d: %d cells for %d columns", i+1, len(r), len(t.Columns))
			}
		}
	}
	return nil
}

// onWallClock returns p with every time stripped of its monotonic clock
// reading (Time.Round(0)), copying what it changes. Go subtracts two
// times taken in this process by the monotonic clock, and times read back
// from JSON by the wall clock, which an NTP slew moves against it by up
// to 500 ppm: without this, `relia load --html` drew its page from the
// first and `relia report` from the second, and the two pages differed in
// the sixth digit of a chart's figures.
func (p *Page) onWallClock() *Page {
	q := *p
	q.Generated, q.Start, q.End = p.Generated.Round(0), p.Start.Round(0), p.End.Round(0)
	q.Phases = windowsOnWallClock(p.Phases)
	q.Sections = slices.Clone(p.Sections)
	for si := range q.Sections {
		s := &q.Sections[si]
		s.Charts = slices.Clone(s.Charts)
		for ci := range s.Charts {
			c := &s.Charts[ci]
			c.Windows = windowsOnWallClock(c.Windows)
			c.Series = slices.Clone(c.Series)
			for i := range c.Series {
				pts := slices.Clone(c.Series[i].Points)
				for j := range pts {
					pts[j].T = pts[j].T.Round(0)
				}
				c.Series[i].Points = pts
			}
		}
	}
	return &q
}

// windowsOnWallClock is a copy of ws on the wall clock (onWallClock).
func windowsOnWallClock(ws []Window) []Window {
	ws = slices.Clone(ws)
	for i := range ws {
		ws[i].From, ws[i].To = ws[i].From.Round(0), ws[i].To.Round(0)
	}
	return ws
}
