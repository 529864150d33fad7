package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/load"
	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
	"github.com/relia-dev/relia/report/loadreport"
)

func init() { register(newReportCmd) }

func newReportCmd() *cobra.Command {
	var htmlOut, title string
	cmd := &cobra.Command{
		Use:   "report FILE... --html OUT.html",
		Short: "Render saved results (load results, a run's journal, recorders) as a self-contained HTML report",
		Long: `Render what relia saved as a self-contained HTML report. The kind of each
file is read from its "schema" field:

  relia/load/v1      results of relia load --out: the same page as relia load
                     --html; several files (segments of one test) are merged
                     exactly first, as relia load merge does
  relia/journal/v1   journal.json of relia run or relia demo: the run's
                     report.html again, as far as the journal keeps it (the
                     page says what it lacks)
  relia/llm/v1       results of relia load llm --out: the same page as its
                     --html; several (segments of one test) merged exactly
  relia/outcome/v1   outcome recorders: figures, outcomes by class and status,
                     latency, throughput and error charts; several are merged

The report loads nothing from the network, so it opens offline and can be
attached as it is. relia report only renders: it exits 0 whatever the
verdict of the results.

  relia report results.json --html report.html
  relia report part0.json part1.json --html merged.html
  relia report relia-demo/journal.json --html demo.html --title "demo, again"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if htmlOut == "" {
				return badInput(errors.New("--html is required (a path, or - for stdout)"))
			}
			page, err := readReport(args)
			if err != nil {
				return err
			}
			if title != "" {
				page.Title = title
			}
			page.Generated = time.Now()
			var buf bytes.Buffer
			if err := page.WriteHTML(&buf); err != nil {
				return runtimeErr(fmt.Errorf("rendering the report: %w", err))
			}
			if err := writeOut(cmd, htmlOut, buf.Bytes()); err != nil {
				return err
			}
			if htmlOut != "-" {
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (%d bytes)\n", htmlOut, buf.Len())
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&htmlOut, "html", "", "write the HTML report to this path (- for stdout)")
	cmd.Flags().StringVar(&title, "title", "", "the report's title (default: the page's own, or \"relia report: FILE\" for recorders)")
	return cmd
}

// savedFile is one input of relia report, read and sorted by schema.
type savedFile struct {
	path, schema string
	data         []byte
}

// readReport reads the files, checks that they are of one kind, and
// builds that kind's page. A file relia cannot read is the user's input
// being wrong.
func readReport(paths []string) (*report.Page, error) {
	var files []savedFile
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, badInput(fmt.Errorf("reading results: %w", err))
		}
		var head struct {
			Schema string `json:"schema"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, badInput(fmt.Errorf("reading results %s: not a JSON object that relia wrote: %w", path, err))
		}
		switch head.Schema {
		case load.ResultSchema, experiment.JournalSchema, outcome.Schema, llmload.ResultSchema:
		default:
			return nil, badInput(fmt.Errorf("reading results %s: schema %q: relia report reads %s (relia load --out), %s (relia load llm --out), %s (journal.json of relia run and relia demo) and %s (outcome recorders)",
				path, head.Schema, load.ResultSchema, llmload.ResultSchema, experiment.JournalSchema, outcome.Schema))
		}
		if len(files) > 0 && files[0].schema != head.Schema {
			return nil, badInput(fmt.Errorf("reading results %s: schema %s differs from %s's %s; render one kind at a time",
				path, head.Schema, files[0].path, files[0].schema))
		}
		files = append(files, savedFile{path: path, schema: head.Schema, data: data})
	}
	switch files[0].schema {
	case load.ResultSchema:
		return loadResultsPage(files)
	case experiment.JournalSchema:
		return journalPage(files)
	case llmload.ResultSchema:
		return llmResultsPage(files)
	}
	rec, err := readRecorders(files)
	if err != nil {
		return nil, err
	}
	return recorderPage(rec, "relia report: "+strings.Join(baseNames(paths), ", ")), nil
}

// loadResultsPage is the load report of one result, or of the segments
// of one test merged exactly.
func loadResultsPage(files []savedFile) (*report.Page, error) {
	var parts []*load.Result
	for _, f := range files {
		r := &load.Result{}
		if err := r.UnmarshalJSON(f.data); err != nil {
			return nil, badInput(fmt.Errorf("reading results %s: %w", f.path, err))
		}
		parts = append(parts, r)
	}
	res := parts[0]
	if len(parts) > 1 {
		var err error
		if res, err = load.Merge(parts...); err != nil {
			return nil, badInput(fmt.Errorf("merging results: %w", err))
		}
	}
	return loadreport.Page(res, res.Judge()), nil
}

// journalPage is a run's report re-rendered from its journal.
func journalPage(files []savedFile) (*report.Page, error) {
	if len(files) > 1 {
		return nil, badInput(fmt.Errorf("reading journals: %d given; a journal is one run's record, so relia report renders one at a time", len(files)))
	}
	j, err := experiment.DecodeJournal(bytes.NewReader(files[0].data))
	if err != nil {
		return nil, badInput(fmt.Errorf("%s: %w", files[0].path, err))
	}
	if j.Verdict == nil || j.Scorecard == nil || j.Plan == nil {
		return nil, badInput(fmt.Errorf("%s: the run ended before its verdict (exit code %d), so there is no report to render", files[0].path, j.ExitCode))
	}
	return experiment.ReportPage(j, nil), nil
}

// readRecorders decodes and merges saved recorders.
func readRecorders(files []savedFile) (*outcome.Recorder, error) {
	var all *outcome.Recorder
	for _, f := range files {
		rec := new(outcome.Recorder)
		if err := rec.UnmarshalJSON(f.data); err != nil {
			return nil, badInput(fmt.Errorf("reading results %s: %w", f.path, err))
		}
		if all == nil {
			all = rec
			continue
		}
		if err := all.Merge(rec); err != nil {
			return nil, badInput(fmt.Errorf("merging results %s: %w", f.path, err))
		}
	}
	return all, nil
}

// recorderPage is the report of a recorder on its own: figures and
// breakdowns first, the charts over the whole recorder after. A bare
// recorder does not say when its run started and ended, so its rates
// divide by whole buckets.
func recorderPage(rec *outcome.Recorder, title string) *report.Page {
	page := &report.Page{Title: title}
	first, last, ok := rec.Span()
	if ok {
		page.Start = first
		page.Subtitle = fmt.Sprintf("%s to %s UTC, %s buckets",
			first.UTC().Format("2006-01-02 15:04:05"), last.Add(rec.Options().BucketWidth).UTC().Format("15:04:05"), rec.Options().BucketWidth)
	}
	tables := append(report.RecorderTables(rec, time.Time{}, time.Time{}), report.StatusCodeTable(rec.StatusCodes()))
	all := rec.Total()
	charts := report.RecorderCharts(rec, time.Time{}, time.Time{})
	page.Sections = []report.Section{
		{Title: "Summary", Stats: report.RecorderStats(rec, time.Time{}, time.Time{}), Tables: tables},
		{Title: "Over time", Text: "An outcome recorder keeps no run start and end, so the first and last buckets count as whole: their rates may read low.",
			Charts: charts, Distributions: []report.PercentileChart{report.LatencyDistribution("Latency distribution", report.HistogramPercentiles("latency", all.Latency))}},
	}
	if !ok {
		page.Sections[0].Text = "The results hold no requests."
	}
	return page
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}
