package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/relia-dev/relia/outcome"
	"github.com/relia-dev/relia/report"
)

func init() { register(newReportCmd) }

func newReportCmd() *cobra.Command {
	var htmlOut, title string
	cmd := &cobra.Command{
		Use:   "report FILE... --html OUT.html",
		Short: "Render saved results as a self-contained HTML report",
		Long: `Render one or more saved outcome recorders (JSON, schema relia/outcome/v1)
as a self-contained HTML report: headline figures, outcomes by class and
status, and latency, throughput and error charts over time. Several files
(segments of one run) are merged exactly first. The report loads nothing
from the network, so it opens offline and can be attached as it is.

  relia report results.json --html report.html
  relia report seg-0.json seg-1.json seg-2.json --html report.html --title "checkout soak"`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if htmlOut == "" {
				return badInput(errors.New("--html is required (a path, or - for stdout)"))
			}
			rec, err := readRecorders(args)
			if err != nil {
				return err
			}
			if title == "" {
				title = "relia report: " + strings.Join(baseNames(args), ", ")
			}
			var buf bytes.Buffer
			if err := recorderPage(rec, title, time.Now()).WriteHTML(&buf); err != nil {
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
	cmd.Flags().StringVar(&title, "title", "", `the report's title (default "relia report: FILE")`)
	return cmd
}

// readRecorders decodes and merges saved recorders; a file that is not
// one is the user's input being wrong.
func readRecorders(paths []string) (*outcome.Recorder, error) {
	var all *outcome.Recorder
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, badInput(fmt.Errorf("reading results: %w", err))
		}
		rec := new(outcome.Recorder)
		if err := rec.UnmarshalJSON(data); err != nil {
			return nil, badInput(fmt.Errorf("reading results %s: %w", path, err))
		}
		if all == nil {
			all = rec
			continue
		}
		if err := all.Merge(rec); err != nil {
			return nil, badInput(fmt.Errorf("merging results %s: %w", path, err))
		}
	}
	return all, nil
}

// recorderPage is the report of a recorder on its own: figures and
// breakdowns first, the charts over the whole run after.
func recorderPage(rec *outcome.Recorder, title string, now time.Time) *report.Page {
	page := &report.Page{Title: title, Generated: now}
	first, last, ok := rec.Span()
	if ok {
		page.Start = first
		page.Subtitle = fmt.Sprintf("%s to %s UTC, %s buckets",
			first.UTC().Format("2006-01-02 15:04:05"), last.Add(rec.Options().BucketWidth).UTC().Format("15:04:05"), rec.Options().BucketWidth)
	}
	page.Sections = []report.Section{
		{Title: "Summary", Stats: report.RecorderStats(rec, time.Time{}, time.Time{}), Tables: report.RecorderTables(rec, time.Time{}, time.Time{})},
		{Title: "Over time", Charts: report.RecorderCharts(rec, time.Time{}, time.Time{})},
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
