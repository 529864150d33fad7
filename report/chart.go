package report

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The chart geometry, in SVG user units. The plot is as many units wide as
// a chart on a laptop screen has pixels, so one unit is about one pixel.
const (
	svgWidth   = 960
	plotLeft   = 72
	plotRight  = 16
	plotWidth  = svgWidth - plotLeft - plotRight // pixel columns
	plotHeight = 220
	topPad     = 12 // above the plot when no window label needs room
	laneHeight = 15 // one row of window labels
	maxLanes   = 3
	bottomPad  = 28 // the time axis labels
	charWidth  = 6.6
)

// axis is the page's shared time axis.
type axis struct {
	t0, t1 time.Time
}

// pageAxis finds the time axis of the page: Start and End where given,
// otherwise the span of everything the charts hold.
func (p *Page) pageAxis() axis {
	var lo, hi time.Time
	see := func(t time.Time) {
		if t.IsZero() {
			return
		}
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if hi.IsZero() || t.After(hi) {
			hi = t
		}
	}
	for _, s := range p.Sections {
		for _, c := range s.Charts {
			for _, se := range c.Series {
				if n := len(se.Points); n > 0 {
					see(se.Points[0].T)
					see(se.Points[n-1].T)
				}
			}
			for _, w := range c.Windows {
				see(w.From)
				see(w.To)
			}
		}
	}
	a := axis{t0: p.Start, t1: p.End}
	if a.t0.IsZero() {
		a.t0 = lo
	}
	if a.t1.IsZero() {
		a.t1 = hi
	}
	if !a.t1.After(a.t0) {
		a.t1 = a.t0.Add(time.Second)
	}
	return a
}

// x maps a time to its horizontal position.
func (a axis) x(t time.Time) float64 {
	return plotLeft + float64(t.Sub(a.t0))/float64(a.t1.Sub(a.t0))*plotWidth
}

// column is the pixel column of the plot that t falls in.
func (a axis) column(t time.Time) int {
	c := int(math.Floor(a.x(t) - plotLeft))
	return min(max(c, 0), plotWidth-1)
}

// seriesStep is the spacing beyond which two points of s are a gap.
func seriesStep(s *Series) time.Duration {
	if s.Step > 0 {
		return s.Step
	}
	var step time.Duration
	var prev time.Time
	for _, p := range s.Points {
		if math.IsNaN(p.V) {
			continue
		}
		if !prev.IsZero() {
			if d := p.T.Sub(prev); d > 0 && (step == 0 || d < step) {
				step = d
			}
		}
		prev = p.T
	}
	return step
}

// runs splits the points of s inside the axis into runs without gaps. The
// runs share the memory of s.Points.
func (a axis) runs(s *Series, step time.Duration) [][]Point {
	var out [][]Point
	limit := step + step/2
	start := -1
	flush := func(end int) {
		if start >= 0 && end > start {
			out = append(out, s.Points[start:end])
		}
		start = -1
	}
	for i, p := range s.Points {
		switch {
		case p.T.Before(a.t0) || p.T.After(a.t1) || math.IsNaN(p.V):
			flush(i)
			continue
		case start >= 0 && step > 0 && p.T.Sub(s.Points[i-1].T) > limit:
			flush(i)
		}
		if start < 0 {
			start = i
		}
	}
	flush(len(s.Points))
	return out
}

// downsample combines the points of each run that fall in the same pixel
// column, so a series is drawn with at most one point per column and run.
func (a axis) downsample(runs [][]Point, r Reduce) [][]Point {
	out := make([][]Point, 0, len(runs))
	for _, run := range runs {
		var res []Point
		for i := 0; i < len(run); {
			c := a.column(run[i].T)
			j := i + 1
			for j < len(run) && a.column(run[j].T) == c {
				j++
			}
			res = append(res, combine(run[i:j], r))
			i = j
		}
		out = append(out, res)
	}
	return out
}

// combine reduces the points of one pixel column to one.
func combine(pts []Point, r Reduce) Point {
	if len(pts) == 1 {
		return pts[0]
	}
	best := pts[0]
	switch r {
	case ReduceMean:
		var sum float64
		var off time.Duration
		for _, p := range pts {
			sum += p.V
			off += p.T.Sub(pts[0].T)
		}
		n := len(pts)
		return Point{T: pts[0].T.Add(off / time.Duration(n)), V: sum / float64(n)}
	case ReduceMin:
		for _, p := range pts[1:] {
			if p.V < best.V {
				best = p
			}
		}
	default:
		for _, p := range pts[1:] {
			if p.V > best.V {
				best = p
			}
		}
	}
	return best
}

// The view of a chart: every number is already a formatted coordinate so
// that the template only places text.
type chartView struct {
	ID, Title, Unit string
	Width, Height   int
	PlotX, PlotY    string
	PlotW, PlotH    string
	PlotRight       string
	PlotBottom      string
	TickBottom      string
	AxisLabelY      string
	YLabelX         string
	CenterX         string
	CenterY         string
	YTicks          []yTick
	XTicks          []xTick
	Windows         []windowView
	Series          []seriesView
	Empty           bool
	Data            string // JSON for the hover tooltip
}

type yTick struct {
	Y, LabelY, Label string
	Zero             bool
}

type xTick struct {
	X, Label string
}

type windowView struct {
	Label          string
	X, W           string
	EdgeX, EdgeX2  string
	LabelX, LabelY string
	Open           bool // still running at the end of the axis
}

type seriesView struct {
	Name  string
	Class string // palette class, when Color is not a fixed colour
	Color string // fixed #rrggbb, when set
	D     string // the lines
	Count int    // points on the lines
	DotsD string // the points with no neighbour to join
	Dots  int
}

// tipData is what the hover script needs: the plot's span in SVG units,
// the time axis in seconds, and each series' drawn points.
type tipData struct {
	Width  int         `json:"w"`
	X0     json.Number `json:"x0"`
	X1     json.Number `json:"x1"`
	Span   json.Number `json:"span"`
	Unit   string      `json:"u"`
	Series []tipSeries `json:"s"`
}

type tipSeries struct {
	Name string        `json:"n"`
	Gap  json.Number   `json:"g"` // the farthest a point may be from the cursor, in units
	X    []json.Number `json:"x"`
	V    []json.Number `json:"v"`
}

// buildChart lays out one chart on the page's time axis.
func (a axis) buildChart(c *Chart, id string) chartView {
	v := chartView{ID: id, Title: c.Title, Unit: c.Unit, Width: svgWidth}

	// Window labels stack in up to maxLanes rows above the plot so that
	// neighbouring phases stay readable.
	var laneEnd [maxLanes]float64
	lanes := 0
	type placed struct {
		w    Window
		x0   float64
		x1   float64
		lx0  float64 // where the label starts
		lane int
	}
	var ws []placed
	for _, w := range c.Windows {
		to := w.To
		if to.IsZero() {
			to = a.t1
		}
		if to.Before(a.t0) || w.From.After(a.t1) {
			continue
		}
		x0 := math.Max(a.x(w.From), plotLeft)
		x1 := math.Min(a.x(to), plotLeft+plotWidth)
		// The label starts just inside the band, or ends at the right
		// edge of the chart when it would run off it.
		lx0 := x0 + 4
		lx1 := lx0 + charWidth*float64(utf8.RuneCountInString(w.Label))
		if lx1 > svgWidth-2 {
			lx0, lx1 = math.Max(svgWidth-2-(lx1-lx0), 0), svgWidth-2
		}
		lane := 0
		for l := range maxLanes {
			if l == lanes || laneEnd[l] <= lx0 {
				lane = l
				break
			}
			if laneEnd[l] < laneEnd[lane] {
				lane = l
			}
		}
		lanes = max(lanes, lane+1)
		laneEnd[lane] = lx1 + 8
		ws = append(ws, placed{w: w, x0: x0, x1: x1, lx0: lx0, lane: lane})
	}
	plotTop := float64(topPad + lanes*laneHeight)
	v.Height = int(plotTop) + plotHeight + bottomPad
	bottom := plotTop + plotHeight
	v.PlotX, v.PlotY = coord(plotLeft), coord(plotTop)
	v.PlotW, v.PlotH = coord(plotWidth), coord(plotHeight)
	v.PlotRight = coord(plotLeft + plotWidth)
	v.PlotBottom = coord(bottom)
	v.TickBottom = coord(bottom + 5)
	v.AxisLabelY = coord(bottom + 18)
	v.YLabelX = coord(plotLeft - 6)
	v.CenterX = coord(plotLeft + plotWidth/2)
	v.CenterY = coord(plotTop + plotHeight/2)
	for _, p := range ws {
		to := p.w.To
		v.Windows = append(v.Windows, windowView{
			Label:  p.w.Label,
			X:      coord(p.x0),
			W:      coord(math.Max(p.x1-p.x0, 1)),
			EdgeX:  coord(p.x0),
			EdgeX2: coord(p.x1),
			LabelX: coord(p.lx0),
			LabelY: coord(float64(topPad+p.lane*laneHeight) + 2),
			Open:   to.IsZero() || to.After(a.t1),
		})
	}

	// Series: split at gaps, thin to the pixel columns, then scale.
	type drawn struct {
		runs [][]Point
		step time.Duration
	}
	all := make([]drawn, len(c.Series))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range c.Series {
		s := &c.Series[i]
		step := seriesStep(s)
		runs := a.runs(s, step)
		n := 0
		for _, r := range runs {
			n += len(r)
		}
		if n > plotWidth {
			runs = a.downsample(runs, s.Reduce)
		}
		for _, r := range runs {
			for _, p := range r {
				lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
			}
		}
		all[i] = drawn{runs: runs, step: step}
	}
	v.Empty = math.IsInf(lo, 1)
	ylo, yhi, ystep := niceScale(lo, hi)
	y := func(val float64) float64 {
		return bottom - (val-ylo)/(yhi-ylo)*plotHeight
	}
	vals, labels := tickLabels(ylo, yhi, ystep, c.Unit)
	for i, val := range vals {
		yy := y(val)
		v.YTicks = append(v.YTicks, yTick{Y: coord(yy), LabelY: coord(yy + 4), Label: labels[i], Zero: val == 0})
	}
	span := a.t1.Sub(a.t0).Seconds()
	secs, tl := timeTicks(span)
	for i, s := range secs {
		v.XTicks = append(v.XTicks, xTick{X: coord(plotLeft + s/span*plotWidth), Label: tl[i]})
	}

	tip := tipData{Width: svgWidth, X0: num(plotLeft), X1: num(plotLeft + plotWidth), Span: num(span), Unit: c.Unit}
	for i := range c.Series {
		s := &c.Series[i]
		sv := seriesView{Name: s.Name}
		switch {
		case s.Color == "":
			sv.Class = "c" + strconv.Itoa(i%len(palette))
		case paletteIndex(s.Color) >= 0:
			sv.Class = "c" + strconv.Itoa(paletteIndex(s.Color))
		default:
			sv.Color = s.Color
		}
		gap := 1.5 * all[i].step.Seconds() / span * plotWidth
		ts := tipSeries{Name: s.Name, Gap: num(math.Max(gap, 3))}
		var d, dots strings.Builder
		for _, r := range all[i].runs {
			for j, p := range r {
				xs, ys := coord(a.x(p.T)), coord(y(p.V))
				ts.X = append(ts.X, json.Number(xs))
				ts.V = append(ts.V, num(p.V))
				switch {
				case len(r) == 1:
					// A lone point between gaps: a zero-length segment
					// that the round line cap of a wider stroke draws as
					// a dot.
					dots.WriteString("M" + xs + " " + ys + "h0")
					sv.Dots++
				case j == 0:
					d.WriteString("M" + xs + " " + ys)
					sv.Count++
				default:
					d.WriteString("L" + xs + " " + ys)
					sv.Count++
				}
			}
		}
		sv.D, sv.DotsD = d.String(), dots.String()
		v.Series = append(v.Series, sv)
		tip.Series = append(tip.Series, ts)
	}
	data, err := json.Marshal(tip)
	if err == nil {
		v.Data = string(data)
	}
	return v
}

// num prints a value for the tooltip data: six significant digits are
// more than a reader needs and keep the output deterministic.
func num(f float64) json.Number {
	return json.Number(strconv.FormatFloat(f, 'g', 6, 64))
}
