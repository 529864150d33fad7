package report

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

var base = time.Date(2025, 11, 28, 9, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return base.Add(time.Duration(sec * float64(time.Second))) }

// pts builds points one second apart from values; NaN is a missing value.
func pts(vals ...float64) []Point {
	out := make([]Point, len(vals))
	for i, v := range vals {
		out[i] = Point{T: at(float64(i)), V: v}
	}
	return out
}

func TestRunsSplitAtGaps(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	tests := []struct {
		name   string
		series Series
		axis   axis
		want   []int // the lengths of the runs
	}{
		{"no gaps", Series{Points: pts(1, 2, 3, 4)}, axis{at(0), at(3)}, []int{4}},
		{"NaN breaks", Series{Points: pts(1, 2, nan, 4, 5)}, axis{at(0), at(4)}, []int{2, 2}},
		{"leading and trailing NaN", Series{Points: pts(nan, 2, 3, nan)}, axis{at(0), at(3)}, []int{2}},
		{"spacing breaks", Series{Points: []Point{{at(0), 1}, {at(1), 1}, {at(2), 1}, {at(5), 1}, {at(6), 1}}}, axis{at(0), at(6)}, []int{3, 2}},
		{"spacing within 1.5 steps joins", Series{Points: []Point{{at(0), 1}, {at(1), 1}, {at(2.5), 1}}}, axis{at(0), at(3)}, []int{3}},
		{"explicit step", Series{Points: []Point{{at(0), 1}, {at(2), 1}, {at(4), 1}, {at(10), 1}}, Step: 2 * time.Second}, axis{at(0), at(10)}, []int{3, 1}},
		{"explicit step shorter than spacing", Series{Points: []Point{{at(0), 1}, {at(2), 1}}, Step: time.Second}, axis{at(0), at(2)}, []int{1, 1}},
		{"clipped to the axis", Series{Points: pts(1, 2, 3, 4, 5, 6)}, axis{at(2), at(4)}, []int{3}},
		{"equal times", Series{Points: []Point{{at(0), 1}, {at(0), 2}, {at(1), 3}}}, axis{at(0), at(1)}, []int{3}},
		{"one point", Series{Points: pts(7)}, axis{at(0), at(1)}, []int{1}},
		{"empty", Series{}, axis{at(0), at(1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			runs := tt.axis.runs(&tt.series, seriesStep(&tt.series))
			var got []int
			for _, r := range runs {
				got = append(got, len(r))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("runs = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("runs = %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// hour is a one-hour series at one point a second: a flat 20 with one
// 1-second spike and one 1-second dip, the shape that naive thinning
// (every n-th point) loses.
func hour(spikeAt, dipAt int) []Point {
	out := make([]Point, 3600)
	for i := range out {
		v := 20 + float64(i%7)
		switch i {
		case spikeAt:
			v = 900
		case dipAt:
			v = 1
		}
		out[i] = Point{T: at(float64(i)), V: v}
	}
	return out
}

func TestDownsampleKeepsSpikes(t *testing.T) {
	t.Parallel()
	a := axis{at(0), at(3599)}
	for _, spike := range []int{0, 1, 1234, 1235, 3598, 3599} {
		s := Series{Points: hour(spike, 2000), Step: time.Second}
		runs := a.downsample(a.runs(&s, time.Second), ReduceMax)
		n, peak, low := 0, 0.0, math.Inf(1)
		for _, r := range runs {
			n += len(r)
			for _, p := range r {
				peak, low = math.Max(peak, p.V), math.Min(low, p.V)
			}
		}
		if n > plotWidth || n < plotWidth/2 {
			t.Errorf("spike at %d: %d points drawn, want at most %d", spike, n, plotWidth)
		}
		if peak != 900 {
			t.Errorf("spike at %d: highest drawn point %v, want the spike 900", spike, peak)
		}
		if low == 1 {
			t.Errorf("spike at %d: ReduceMax kept the dip", spike)
		}
	}

	s := Series{Points: hour(100, 2000), Step: time.Second}
	runs := a.downsample(a.runs(&s, time.Second), ReduceMin)
	low := math.Inf(1)
	for _, p := range runs[0] {
		low = math.Min(low, p.V)
	}
	if low != 1 {
		t.Errorf("ReduceMin: lowest drawn point %v, want the dip 1", low)
	}

	runs = a.downsample(a.runs(&s, time.Second), ReduceMean)
	var sum float64
	for _, p := range runs[0] {
		sum += p.V
		if p.T.Before(at(0)) || p.T.After(at(3599)) {
			t.Fatalf("ReduceMean: point at %v outside the data", p.T)
		}
	}
	if mean := sum / float64(len(runs[0])); mean < 22 || mean > 25 {
		t.Errorf("ReduceMean: mean of drawn points %v, want about 23.3 (a spike averages away)", mean)
	}
}

func TestDownsampleKeepsGaps(t *testing.T) {
	t.Parallel()
	p := hour(-1, -1)
	for i := 1000; i < 1100; i++ {
		p[i].V = math.NaN()
	}
	s := Series{Points: p, Step: time.Second}
	a := axis{at(0), at(3599)}
	runs := a.downsample(a.runs(&s, time.Second), ReduceMax)
	if len(runs) != 2 {
		t.Fatalf("%d runs after downsampling, want the 2 around the gap", len(runs))
	}
	if last, first := runs[0][len(runs[0])-1].T, runs[1][0].T; !last.Before(at(1000)) || first.Before(at(1100)) {
		t.Errorf("the gap 1000..1100 s is drawn from %v to %v", last, first)
	}
}

// TestLargeChart renders a one-hour run at one-second buckets, four
// series, through the whole chart layout: every path must stay within the
// pixel columns and keep its spike, and the tooltip data must match.
func TestLargeChart(t *testing.T) {
	t.Parallel()
	c := Chart{Title: "Latency", Unit: "ms"}
	for i, name := range []string{"p50", "p90", "p99", "max"} {
		c.Series = append(c.Series, Series{Name: name, Points: hour(500+i*700, -1), Step: time.Second})
	}
	a := axis{at(0), at(3599)}
	v := a.buildChart(&c, "c", nil, nil)
	for _, s := range v.Layers[0].Series {
		if s.Count > plotWidth || strings.Count(s.D, "L")+strings.Count(s.D, "M") != s.Count {
			t.Errorf("%s: %d points, %d in the path; want at most %d", s.Name, s.Count, strings.Count(s.D, "L")+1, plotWidth)
		}
	}
	// The spikes set the axis: 900 ms rounds up to 1 s.
	if top := v.Layers[0].YTicks[len(v.Layers[0].YTicks)-1].Label; top != "1.0 s" {
		t.Errorf("top tick %q, want 1.0 s", top)
	}
	var tip tipData
	if err := json.Unmarshal([]byte(v.Data), &tip); err != nil {
		t.Fatal(err)
	}
	for i, s := range tip.Series {
		if len(s.X) != v.Layers[0].Series[i].Count || len(s.V) != len(s.X) {
			t.Errorf("tooltip %s: %d x, %d v for %d points", s.Name, len(s.X), len(s.V), v.Layers[0].Series[i].Count)
		}
		found := false
		for _, val := range s.V {
			found = found || val == "900"
		}
		if !found {
			t.Errorf("tooltip %s lost the spike", s.Name)
		}
	}
}

func TestWindowLabelsStack(t *testing.T) {
	t.Parallel()
	c := Chart{
		Series: []Series{{Name: "x", Points: pts(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)}},
		Windows: []Window{
			{Label: "a long label for the first phase", From: at(1), To: at(3)},
			{Label: "overlapping", From: at(2), To: at(4)},
			{Label: "far away", From: at(8), To: at(9)},
			{Label: "still running at the end of the run", From: at(9)},
			{Label: "before the axis", From: at(-5), To: at(-1)},
		},
	}
	v := axis{at(0), at(9)}.buildChart(&c, "c", nil, map[string]int{})
	if len(v.Windows) != 4 {
		t.Fatalf("%d windows drawn, want 4 (one lies before the axis)", len(v.Windows))
	}
	if v.Windows[0].LabelY == v.Windows[1].LabelY {
		t.Error("overlapping labels share a row")
	}
	if v.Windows[2].LabelY != v.Windows[0].LabelY {
		t.Error("a label with room in the first row went elsewhere")
	}
	if !v.Windows[3].Open || v.Windows[0].Open {
		t.Error("only the window without an end is open")
	}
	// The last label would run off the chart: it ends at the edge.
	x, _ := json.Number(v.Windows[3].LabelX).Float64()
	if w := charWidth * float64(len("still running at the end of the run")); x+w > svgWidth {
		t.Errorf("label from %v, %v wide, runs off the %d-wide chart", x, w, svgWidth)
	}
	if v.Height != topPad+2*laneHeight+plotHeight+bottomPad {
		t.Errorf("height %d, want room for two label rows", v.Height)
	}
}

// TestStepsDrawLevels: a step series draws each point as a level across
// its bucket, climbing between levels, and the last level ends one step
// after its point or at the edge of the axis.
func TestStepsDrawLevels(t *testing.T) {
	t.Parallel()
	c := Chart{Series: []Series{{Name: "rate", Points: pts(2, 4, 4), Step: time.Second, Steps: true}}}
	v := axis{at(0), at(4)}.buildChart(&c, "c", nil, nil)
	d := v.Layers[0].Series[0].D
	// x: 72 + s/4*872; y: 2 and 4 on an axis to 4 over 220 units from 232.
	if want := "M72 122H290V12H508V12H726"; d != want {
		t.Errorf("path %q, want %q", d, want)
	}
	c.Series[0].Points = pts(1, 2, 3, 4, 5)
	d = axis{at(0), at(4)}.buildChart(&c, "c", nil, nil).Layers[0].Series[0].D
	if !strings.HasSuffix(d, "H944") {
		t.Errorf("path %q: the last level runs past the axis end (944)", d)
	}
	var tip tipData
	if err := json.Unmarshal([]byte(v.Data), &tip); err != nil {
		t.Fatal(err)
	}
	if got := tip.Series[0].X[0]; got != "181" {
		t.Errorf("tooltip x of the first level %s, want its middle 181", got)
	}
}

func TestLogAxis(t *testing.T) {
	t.Parallel()
	y := newYAxis(Log, 0, 2500, 0.3, 0, 100)
	if y.lo != 0.1 || y.hi != 10000 {
		t.Fatalf("log axis [%v, %v], want [0.1, 10000]", y.lo, y.hi)
	}
	vals, labels := y.ticks("ms")
	if want := []string{"0.1 ms", "1 ms", "10 ms", "100 ms", "1 s", "10 s"}; strings.Join(labels, ",") != strings.Join(want, ",") {
		t.Errorf("ticks %q (%v), want %q", labels, vals, want)
	}
	if y.at(0) != 100 || y.at(-3) != 100 || y.at(0.1) != 100 || y.at(10000) != 0 || y.at(10) != 60 {
		t.Errorf("at: 0 -> %v, 0.1 -> %v, 10 -> %v, 10000 -> %v", y.at(0), y.at(0.1), y.at(10), y.at(10000))
	}
	// Two decades or fewer get 2x and 5x ticks.
	_, labels = newYAxis(Log, 3, 40, 3, 0, 100).ticks("req/s")
	if want := "1 req/s,2 req/s,5 req/s,10 req/s,20 req/s,50 req/s,100 req/s"; strings.Join(labels, ",") != want {
		t.Errorf("short log axis ticks %q, want %s", labels, want)
	}
	// Nothing above zero: a linear axis.
	if y := newYAxis(Log, 0, 0, math.Inf(1), 0, 100); y.scale != Linear {
		t.Error("a log axis without positive values did not fall back to linear")
	}
}

// TestScaleToggleDrawsBothAxes: a chart with a switch has a linear and a
// log layer, the one it opens with shown.
func TestScaleToggleDrawsBothAxes(t *testing.T) {
	t.Parallel()
	c := Chart{Unit: "ms", Scale: Log, ScaleToggle: true, Series: []Series{{Name: "p99", Points: pts(5, 50, 500)}},
		Lines: []Line{{Label: "limit", V: 200, Color: "red"}}}
	v := axis{at(0), at(2)}.buildChart(&c, "c", nil, nil)
	if len(v.Layers) != 2 || v.Layers[0].Scale != "linear" || !v.Layers[0].Hidden || v.Layers[1].Hidden || !v.LogShown {
		t.Fatalf("layers %+v, want linear hidden and log shown", v.Layers)
	}
	for _, l := range v.Layers {
		if len(l.Series) != 1 || len(l.Lines) != 1 || l.Lines[0].Class != "r3" {
			t.Errorf("%s layer: %d series, lines %+v", l.Scale, len(l.Series), l.Lines)
		}
	}
	if v.Layers[0].Series[0].D == v.Layers[1].Series[0].D {
		t.Error("the linear and the log layer draw the same path")
	}
	c.ScaleToggle = false
	if v := (axis{at(0), at(2)}).buildChart(&c, "c", nil, nil); len(v.Layers) != 1 || v.Toggle {
		t.Errorf("without a switch: %d layers", len(v.Layers))
	}
}

// TestPhasesAndWindowColours: the page's phases take the first label row
// of every chart, and windows without a colour get one per label, the
// same on every chart.
func TestPhasesAndWindowColours(t *testing.T) {
	t.Parallel()
	p := &Page{
		Phases: []Window{{Label: "baseline", From: at(0), To: at(4)}, {Label: "spike", From: at(4), To: at(9)}},
		Sections: []Section{{Charts: []Chart{
			{Series: []Series{{Name: "x", Points: pts(1, 2, 3)}}, Windows: []Window{{Label: "latency", From: at(1), To: at(2)}, {Label: "kill", From: at(5), To: at(6)}}},
			{Series: []Series{{Name: "x", Points: pts(1, 2, 3)}}, Windows: []Window{{Label: "kill", From: at(5), To: at(6)}, {Label: "fixed", From: at(7), Color: "#00ff00"}}},
		}}},
	}
	colors := p.windowColors()
	a := p.pageAxis()
	first := a.buildChart(&p.Sections[0].Charts[0], "a", p.Phases, colors)
	second := a.buildChart(&p.Sections[0].Charts[1], "b", p.Phases, colors)
	if len(first.Phases) != 2 || first.Phases[0].Alt || !first.Phases[1].Alt {
		t.Fatalf("phases %+v, want two, every other one shaded", first.Phases)
	}
	if first.Windows[0].LabelY == first.Phases[0].LabelY {
		t.Error("a window label shares the phases' row")
	}
	if first.Windows[0].Class == first.Windows[1].Class {
		t.Errorf("two faults share the colour %s", first.Windows[0].Class)
	}
	if first.Windows[1].Class != second.Windows[0].Class {
		t.Errorf("one fault in two colours: %s and %s", first.Windows[1].Class, second.Windows[0].Class)
	}
	if w := second.Windows[1]; w.Color != "#00ff00" || w.Class != "" {
		t.Errorf("a window with its own colour drew as %+v", w)
	}
	if first.Height != topPad+2*laneHeight+plotHeight+bottomPad {
		t.Errorf("height %d, want rows for the phases and the windows", first.Height)
	}
}

// TestFarLinesDoNotFlattenTheData: a threshold far above the data is
// named at the top edge instead of stretching the axis to itself.
func TestFarLinesDoNotFlattenTheData(t *testing.T) {
	t.Parallel()
	c := Chart{Unit: "ms", ScaleToggle: true, Series: []Series{{Name: "p99", Points: pts(5, 8, 10)}},
		Lines: []Line{{Label: "near", V: 15}, {Label: "p(99)<500", V: 500}, {Label: "p(99)<2000", V: 2000}}}
	v := axis{at(0), at(2)}.buildChart(&c, "c", nil, nil)
	linear, log := v.Layers[0], v.Layers[1]
	if top := linear.YTicks[len(linear.YTicks)-1].Label; top != "15 ms" {
		t.Errorf("linear axis tops at %s, want 15 ms: only the near line stretches it", top)
	}
	for i, wantAbove := range []bool{false, true, true} {
		if linear.Lines[i].Above != wantAbove {
			t.Errorf("linear: line %d above %v, want %v", i, linear.Lines[i].Above, wantAbove)
		}
	}
	if log.Lines[1].Above || !log.Lines[2].Above || log.YTicks[len(log.YTicks)-1].Label != "1 s" {
		t.Errorf("log: lines %+v, top tick %s; want 500 ms on the axis (to 1 s) and 2 s above it", log.Lines, log.YTicks[len(log.YTicks)-1].Label)
	}
	if l := linear.Lines[2].Label; l != "\u2191 p(99)<2000 (2 s)" {
		t.Errorf("label of a line above the chart %q", l)
	}
}

func TestXYChart(t *testing.T) {
	c := XYChart{Title: "throughput", XLabel: "concurrency", Unit: "req/s", Series: []XYSeries{
		{Name: "measured", Dots: true, Points: []XYPoint{{1, 100}, {2, 190}, {4, 300}}},
		{Name: "model", Points: []XYPoint{{0, 0}, {2, 195}, {5, 320}}},
	}}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	v := buildXYChart(&c, "x1")
	if len(v.Layers) == 0 || len(v.Layers[0].Series) != 2 {
		t.Fatalf("layers %+v", v.Layers)
	}
	if m, l := v.Layers[0].Series[0], v.Layers[0].Series[1]; m.Dots != 3 || m.Count != 0 || l.Dots != 0 || l.Count != 3 {
		t.Errorf("measured: %d dots %d joined; model: %d dots %d joined", m.Dots, m.Count, l.Dots, l.Count)
	}
	last := v.XTicks[len(v.XTicks)-1]
	if v.XTicks[0].Label != "0" || !strings.HasSuffix(last.Label, " concurrency") {
		t.Errorf("x ticks %+v", v.XTicks)
	}
	for _, bad := range []XYChart{
		{Series: []XYSeries{{Name: "s", Points: []XYPoint{{2, 1}, {1, 1}}}}},
		{Series: []XYSeries{{Name: "s", Points: []XYPoint{{1, math.NaN()}}}}},
		{Series: []XYSeries{{Name: "s", Points: []XYPoint{{-1, 1}}}}},
	} {
		if err := bad.validate(); err == nil {
			t.Errorf("%+v accepted", bad.Series[0].Points)
		}
	}
}
