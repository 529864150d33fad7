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
	for _, w := range p.Phases {
		see(w.From)
		see(w.To)
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
// that the template only places text. Time charts and percentile charts
// share it.
type chartView struct {
	ID, Title, Unit string
	Note            string
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
	XTicks          []xTick
	Phases          []windowView
	Windows         []windowView
	Legend          []legendItem
	// Layers are the y axes the chart can be read on: one, or a linear
	// and a log one when the reader may switch.
	Layers   []layerView
	Toggle   bool
	LogShown bool // the log layer is the one shown first
	Empty    bool
	Data     string // JSON for the hover tooltip
}

// layerView is the chart drawn on one y axis: its ticks, reference lines
// and series.
type layerView struct {
	Scale  string // "linear" or "log"
	Hidden bool
	YTicks []yTick
	Lines  []lineView
	Series []seriesView
}

type yTick struct {
	Y, LabelY, Label string
	Zero             bool
}

type xTick struct {
	X, Label string
	End      bool // at the right edge: the label ends at the tick
}

// newXTick places a tick at x. A label centred on it that would run past
// the right margin ends at the tick instead.
func newXTick(x float64, label string) xTick {
	return xTick{X: coord(x), Label: label, End: x+charWidth*float64(utf8.RuneCountInString(label))/2 > svgWidth}
}

type windowView struct {
	Label          string
	Class          string // palette class, when Color is not a fixed colour
	Color          string // fixed #rrggbb
	X, W           string
	EdgeX, EdgeX2  string
	LabelX, LabelY string
	Open           bool // still running at the end of the axis
	Alt            bool // a phase drawn with a background, every other one
}

type lineView struct {
	Label          string
	Above          bool // beyond the axis: the label only, at the top
	Class, Color   string
	Y              string
	LabelX, LabelY string
}

type legendItem struct {
	Name         string
	Class, Color string
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
// the x axis (seconds of a time axis, or decades of a percentile axis),
// and each series' drawn points.
type tipData struct {
	Kind   string      `json:"k"` // "t" time, "p" percentile, "n" a number (XYChart)
	XLabel string      `json:"xl,omitempty"`
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

// xpt is a point placed on the x axis: v from x, and for a step until x2.
type xpt struct {
	x, x2, v float64
}

// plotted is a series laid out on the x axis, before any y axis.
type plotted struct {
	name         string
	class, color string
	steps        bool
	runs         [][]xpt
	gap          float64 // tooltip reach, in units
}

// colorOf resolves a colour field into a palette class or a fixed
// colour; auto is the palette index used when c is empty.
func colorOf(c string, auto int) (class, color string) {
	switch {
	case c == "":
		return "c" + strconv.Itoa(auto%len(palette)), ""
	case paletteIndex(c) >= 0:
		return "c" + strconv.Itoa(paletteIndex(c)), ""
	}
	return "", c
}

// frame lays out the labels above the plot: one row for the page's
// phases, when any falls on the axis, then up to maxLanes rows of window
// labels. It returns the plot's top edge.
func (a axis) frame(v *chartView, phases, windows []Window, colors map[string]int) float64 {
	type placed struct {
		w        Window
		x0, x1   float64
		lx0      float64 // where the label starts
		lane     int
		phase    bool
		phaseIdx int
	}
	clip := func(w Window) (x0, x1 float64, ok bool) {
		to := w.To
		if to.IsZero() {
			to = a.t1
		}
		if to.Before(a.t0) || w.From.After(a.t1) {
			return 0, 0, false
		}
		return math.Max(a.x(w.From), plotLeft), math.Min(a.x(to), plotLeft+plotWidth), true
	}
	label := func(x0 float64, text string) (lx0, lx1 float64) {
		// The label starts just inside the band, or ends at the right
		// edge of the chart when it would run off it.
		lx0 = x0 + 4
		lx1 = lx0 + charWidth*float64(utf8.RuneCountInString(text))
		if lx1 > svgWidth-2 {
			lx0, lx1 = math.Max(svgWidth-2-(lx1-lx0), 0), svgWidth-2
		}
		return lx0, lx1
	}
	var ps []placed
	for i, w := range phases {
		x0, x1, ok := clip(w)
		if !ok {
			continue
		}
		lx0, _ := label(x0, w.Label)
		ps = append(ps, placed{w: w, x0: x0, x1: x1, lx0: lx0, phase: true, phaseIdx: i})
	}
	first := 0
	if len(ps) > 0 {
		first = 1
	}
	var laneEnd [maxLanes]float64
	lanes := 0
	for _, w := range windows {
		x0, x1, ok := clip(w)
		if !ok {
			continue
		}
		lx0, lx1 := label(x0, w.Label)
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
		ps = append(ps, placed{w: w, x0: x0, x1: x1, lx0: lx0, lane: first + lane})
	}
	plotTop := float64(topPad + (first+lanes)*laneHeight)
	for _, p := range ps {
		to := p.w.To
		wv := windowView{
			Label:  p.w.Label,
			X:      coord(p.x0),
			W:      coord(math.Max(p.x1-p.x0, 1)),
			EdgeX:  coord(p.x0),
			EdgeX2: coord(p.x1),
			LabelX: coord(p.lx0),
			LabelY: coord(float64(topPad+p.lane*laneHeight) + 2),
			Open:   to.IsZero() || to.After(a.t1),
		}
		if p.phase {
			wv.Alt = p.phaseIdx%2 == 1
			v.Phases = append(v.Phases, wv)
			continue
		}
		auto := 1
		if p.w.Color == "" {
			auto = colors[p.w.Label]
		}
		wv.Class, wv.Color = colorOf(p.w.Color, auto)
		wv.Class = strings.Replace(wv.Class, "c", "w", 1) // not a line's stroke class
		v.Windows = append(v.Windows, wv)
	}
	return plotTop
}

// place sets the plot's edges in the view from its top edge.
func (v *chartView) place(plotTop float64) float64 {
	v.Width = svgWidth
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
	return bottom
}

// buildChart lays out one chart on the page's time axis, with the page's
// phases and the window colours of the page.
func (a axis) buildChart(c *Chart, id string, phases []Window, colors map[string]int) chartView {
	v := chartView{ID: id, Title: c.Title, Unit: c.Unit, Note: c.Note}
	plotTop := a.frame(&v, phases, c.Windows, colors)
	bottom := v.place(plotTop)

	// Series: split at gaps, thin to the pixel columns, then place on
	// the x axis.
	span := a.t1.Sub(a.t0).Seconds()
	right := float64(plotLeft + plotWidth)
	var all []plotted
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
		p := plotted{name: s.Name, steps: s.Steps, gap: math.Max(1.5*step.Seconds()/span*plotWidth, 3)}
		p.class, p.color = colorOf(s.Color, i)
		for _, r := range runs {
			xr := make([]xpt, len(r))
			for j, pt := range r {
				xr[j] = xpt{x: a.x(pt.T), v: pt.V}
				if s.Steps {
					end := pt.T.Add(step)
					if j+1 < len(r) {
						end = r[j+1].T
					}
					xr[j].x2 = math.Min(a.x(end), right)
				}
			}
			p.runs = append(p.runs, xr)
		}
		all = append(all, p)
	}
	v.layers(all, c.Lines, c.Scale, c.ScaleToggle, c.Unit, plotTop, bottom)

	secs, tl := timeTicks(span)
	for i, s := range secs {
		v.XTicks = append(v.XTicks, newXTick(plotLeft+s/span*plotWidth, tl[i]))
	}
	v.tip("t", "", span, c.Unit, all)
	return v
}

// layers draws the series and lines on the chart's y axis, or on both
// axes when the reader may switch, and fills in the legend.
//
// A reference line stretches the axis to itself when it lies within
// reach of the data (twice its top on a linear axis, a hundred times on
// a log one); a line further up would flatten the data against the
// floor, so it is named at the top edge with an arrow instead.
func (v *chartView) layers(all []plotted, lines []Line, scale Scale, toggle bool, unit string, top, bottom float64) {
	lo, hi, minPos := math.Inf(1), math.Inf(-1), math.Inf(1)
	for _, p := range all {
		for _, r := range p.runs {
			for _, pt := range r {
				lo, hi = math.Min(lo, pt.v), math.Max(hi, pt.v)
				if pt.v > 0 {
					minPos = math.Min(minPos, pt.v)
				}
			}
		}
		v.Legend = append(v.Legend, legendItem{Name: p.name, Class: p.class, Color: p.color})
	}
	v.Empty = math.IsInf(lo, 1)
	scales := []Scale{scale}
	if toggle {
		scales = []Scale{Linear, Log}
		v.Toggle = true
	}
	for _, sc := range scales {
		reach := 2.0
		if sc == Log {
			reach = 100
		}
		llo, lhi, lmin := lo, hi, minPos
		inReach := make([]bool, len(lines))
		for i, l := range lines {
			if v.Empty || hi <= 0 || l.V <= reach*hi {
				inReach[i] = true
				llo, lhi = math.Min(llo, l.V), math.Max(lhi, l.V)
				if l.V > 0 {
					lmin = math.Min(lmin, l.V)
				}
			}
		}
		y := newYAxis(sc, llo, lhi, lmin, top, bottom)
		layer := layerView{Scale: map[Scale]string{Linear: "linear", Log: "log"}[sc], Hidden: sc != scale}
		v.LogShown = v.LogShown || sc == Log && !layer.Hidden
		vals, labels := y.ticks(unit)
		for i, val := range vals {
			yy := y.at(val)
			layer.YTicks = append(layer.YTicks, yTick{Y: coord(yy), LabelY: coord(yy + 4), Label: labels[i], Zero: val == 0 && sc == Linear})
		}
		for i, l := range lines {
			lv := lineView{Label: l.Label, Y: coord(y.at(l.V)), LabelX: coord(plotLeft + plotWidth - 4), LabelY: coord(y.at(l.V) - 4)}
			if !inReach[i] {
				lv.Above, lv.Label, lv.LabelY = true, "\u2191 "+l.Label+" ("+formatValue(l.V, unit)+")", coord(top+11)
			}
			if l.Color != "" {
				lv.Class, lv.Color = colorOf(l.Color, i)
				lv.Class = strings.Replace(lv.Class, "c", "r", 1)
			}
			layer.Lines = append(layer.Lines, lv)
		}
		for _, p := range all {
			layer.Series = append(layer.Series, p.path(y))
		}
		v.Layers = append(v.Layers, layer)
	}
}

// path draws a placed series on a y axis.
func (p plotted) path(y yAxis) seriesView {
	sv := seriesView{Name: p.name, Class: p.class, Color: p.color}
	var d, dots strings.Builder
	for _, r := range p.runs {
		for j, pt := range r {
			xs, ys := coord(pt.x), coord(y.at(pt.v))
			switch {
			case p.steps:
				// A level from x to x2: move (or climb) to it, then run
				// along it.
				if j == 0 {
					d.WriteString("M" + xs + " " + ys)
				} else {
					d.WriteString("V" + ys)
				}
				d.WriteString("H" + coord(pt.x2))
				sv.Count++
			case len(r) == 1:
				// A lone point between gaps: a zero-length segment that
				// the round line cap of a wider stroke draws as a dot.
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
	return sv
}

// tip fills in the hover script's data.
func (v *chartView) tip(kind, xLabel string, span float64, unit string, all []plotted) {
	tip := tipData{Kind: kind, XLabel: xLabel, Width: svgWidth, X0: num(plotLeft), X1: num(plotLeft + plotWidth), Span: num(span), Unit: unit}
	for _, p := range all {
		ts := tipSeries{Name: p.name, Gap: num(p.gap), X: []json.Number{}, V: []json.Number{}}
		for _, r := range p.runs {
			for _, pt := range r {
				x := pt.x
				if p.steps {
					x = (pt.x + pt.x2) / 2 // the middle of the level
				}
				ts.X = append(ts.X, json.Number(coord(x)))
				ts.V = append(ts.V, num(pt.v))
			}
		}
		tip.Series = append(tip.Series, ts)
	}
	data, err := json.Marshal(tip)
	if err == nil {
		v.Data = string(data)
	}
}

// yAxis maps values to heights on a linear or log scale.
type yAxis struct {
	scale       Scale
	lo, hi      float64 // log: powers of ten
	step        float64 // linear tick step
	top, bottom float64
}

// newYAxis fits an axis to values in [lo, hi] whose smallest positive
// value is minPos. A log axis with nothing above zero falls back to
// linear.
func newYAxis(scale Scale, lo, hi, minPos, top, bottom float64) yAxis {
	y := yAxis{scale: scale, top: top, bottom: bottom}
	if scale == Log && !math.IsInf(minPos, 1) {
		y.lo = math.Pow(10, math.Floor(math.Log10(minPos)+1e-9))
		y.hi = math.Pow(10, math.Ceil(math.Log10(hi)-1e-9))
		if y.hi <= y.lo {
			y.hi = y.lo * 10
		}
		return y
	}
	y.scale = Linear
	y.lo, y.hi, y.step = niceScale(lo, hi)
	return y
}

func (y yAxis) at(v float64) float64 {
	h := y.bottom - y.top
	if y.scale == Log {
		if v <= y.lo {
			return y.bottom
		}
		return y.bottom - (math.Log10(v)-math.Log10(y.lo))/(math.Log10(y.hi)-math.Log10(y.lo))*h
	}
	return y.bottom - (v-y.lo)/(y.hi-y.lo)*h
}

// ticks returns the axis' tick values and labels: round steps on a
// linear axis; on a log axis each power of ten (every other one past
// eight), with 2 and 5 times each in between when the axis spans two
// decades or fewer.
func (y yAxis) ticks(unit string) ([]float64, []string) {
	if y.scale == Linear {
		return tickLabels(y.lo, y.hi, y.step, unit)
	}
	decades := int(math.Round(math.Log10(y.hi / y.lo)))
	every := 1
	if decades > 8 {
		every = 2
	}
	var vals []float64
	var labels []string
	for d := 0; d <= decades; d += every {
		base := y.lo * math.Pow(10, float64(d))
		vals = append(vals, base)
		labels = append(labels, logLabel(base, unit))
		if decades <= 2 && d < decades {
			for _, m := range []float64{2, 5} {
				vals = append(vals, base*m)
				labels = append(labels, logLabel(base*m, unit))
			}
		}
	}
	return vals, labels
}

// logLabel prints a log-axis tick: its own unit (1 ms, 10 ms, 1 s), with
// no decimals beyond the value's own.
func logLabel(v float64, unit string) string {
	div, suffix := axisUnit(unit, v)
	return strconv.FormatFloat(v/div, 'g', 4, 64) + suffix
}

// num prints a value for the tooltip data: six significant digits are
// more than a reader needs and keep the output deterministic.
func num(f float64) json.Number {
	return json.Number(strconv.FormatFloat(f, 'g', 6, 64))
}
