package report

import (
	"bufio"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
)

var (
	//go:embed assets/page.tmpl
	pageTemplate string
	//go:embed assets/style.css
	styleCSS string
	//go:embed assets/script.js
	scriptJS string
)

// tmpl escapes every piece of user data by its context (text, attribute,
// SVG path data), so titles, series names and cells can hold anything.
var tmpl = template.Must(template.New("page").Parse(pageTemplate))

type pageView struct {
	Title, Subtitle string
	Generated       string
	Origin          string
	CSS             template.CSS
	JS              template.JS
	Sections        []sectionView
}

type sectionView struct {
	ID, Title string
	Paras     []string
	Stats     []Stat
	Charts    []chartView
	Tables    []tableView
}

// windowPalette is the order in which windows without a colour get one:
// orange first, as a single fault window always was, and the line
// colours of latency charts (blue, green) late.
var windowPalette = []int{1, 4, 6, 5, 3, 0, 2, 7}

// windowColors gives every distinct window label on the page that has no
// colour of its own a palette index, in the order of first appearance,
// so that one fault has one colour on every chart.
func (p *Page) windowColors() map[string]int {
	colors := map[string]int{}
	for _, s := range p.Sections {
		for _, c := range s.Charts {
			for _, w := range c.Windows {
				if _, ok := colors[w.Label]; !ok && w.Color == "" {
					colors[w.Label] = windowPalette[len(colors)%len(windowPalette)]
				}
			}
		}
	}
	return colors
}

type tableView struct {
	Title   string
	Columns []string
	Rows    []rowView
}

type rowView struct {
	Status string
	Cells  []string
}

// timeFormat prints absolute times in the header. UTC keeps reports made
// on machines in different zones comparable.
const timeFormat = "2006-01-02 15:04:05 UTC"

// WriteHTML writes the page as one self-contained HTML file: inline CSS,
// charts as inline SVG and a small inline script for hover tooltips, with
// no fonts, scripts, images or styles fetched from anywhere, so the file
// opens offline and can be attached to a postmortem as it is. The same
// page always gives the same bytes.
//
// A page that cannot be drawn as given (points out of time order, an
// unknown row status, a malformed colour) is an error wrapping ErrInvalid,
// and nothing is written.
func (p *Page) WriteHTML(w io.Writer) error {
	if err := p.validate(); err != nil {
		return err
	}
	p = p.onWallClock()
	a := p.pageAxis()
	v := pageView{
		Title:    p.Title,
		Subtitle: p.Subtitle,
		CSS:      template.CSS(styleCSS),
		JS:       template.JS(scriptJS),
	}
	if v.Title == "" {
		v.Title = "relia report"
	}
	if !p.Generated.IsZero() {
		v.Generated = p.Generated.UTC().Format(timeFormat)
	}
	charts := 0
	colors := p.windowColors()
	for si := range p.Sections {
		s := &p.Sections[si]
		sv := sectionView{ID: "s" + strconv.Itoa(si+1), Title: s.Title, Paras: paragraphs(s.Text), Stats: s.Stats}
		if sv.Title == "" {
			sv.Title = "Section " + strconv.Itoa(si+1)
		}
		for ci := range s.Charts {
			sv.Charts = append(sv.Charts, a.buildChart(&s.Charts[ci], fmt.Sprintf("%s-c%d", sv.ID, ci+1), p.Phases, colors))
			charts++
		}
		for di := range s.Distributions {
			sv.Charts = append(sv.Charts, buildPercentileChart(&s.Distributions[di], fmt.Sprintf("%s-d%d", sv.ID, di+1)))
		}
		for xi := range s.XYCharts {
			sv.Charts = append(sv.Charts, buildXYChart(&s.XYCharts[xi], fmt.Sprintf("%s-x%d", sv.ID, xi+1)))
		}
		for _, t := range s.Tables {
			sv.Tables = append(sv.Tables, tableViewOf(t))
		}
		v.Sections = append(v.Sections, sv)
	}
	if charts > 0 {
		v.Origin = a.t0.UTC().Format(timeFormat)
		if ns := a.t0.Nanosecond(); ns != 0 {
			v.Origin = a.t0.UTC().Format("2006-01-02 15:04:05.000 UTC")
		}
	}
	bw := bufio.NewWriter(w)
	if err := tmpl.Execute(bw, v); err != nil {
		return fmt.Errorf("rendering report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

func tableViewOf(t Table) tableView {
	tv := tableView{Title: t.Title, Columns: t.Columns}
	for i, r := range t.Rows {
		rv := rowView{Cells: r}
		if i < len(t.RowStatus) {
			rv.Status = t.RowStatus[i]
		}
		// Short rows are padded so that every row has the table's width
		// and the row colour spans it.
		for len(rv.Cells) < len(t.Columns) {
			rv.Cells = append(rv.Cells[:len(rv.Cells):len(rv.Cells)], "")
		}
		tv.Rows = append(tv.Rows, rv)
	}
	return tv
}

// paragraphs splits text at blank lines.
func paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
