package experiment

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// JournalSchema is the value of a journal's "schema" field. Readers
// reject other values, so a change that older readers would misread
// comes with a new name.
const JournalSchema = "relia/journal/v1"

// Journal is the machine-readable record of a run, written as
// journal.json: the plan with its seed, what happened when, the
// per-second series, the verdict, the scorecard and the exit code.
// docs/experiment.md documents every field.
type Journal struct {
	Schema     string `json:"schema"`
	Experiment string `json:"experiment"`
	// Seed replays the run's decisions: relia run --seed.
	Seed uint64 `json:"seed"`
	Plan *Plan  `json:"plan"`
	// Start and End bound the run.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Phases and Faults are the timeline as it happened.
	Phases []PhaseRecord `json:"phases"`
	Faults []FaultRecord `json:"faults"`
	// Abort is the breach that ended the run early.
	Abort *Breach `json:"abort,omitempty"`
	// Series has one sample per recorder bucket that holds outcomes.
	Series    []Sample   `json:"series"`
	Verdict   *Verdict   `json:"verdict"`
	Scorecard *Scorecard `json:"scorecard"`
	ExitCode  int        `json:"exit_code"`
}

// Sample is one recorder bucket of a run, for plots.
type Sample struct {
	Start time.Time `json:"start"`
	// Requests counts every outcome, dropped ones included; Errors the
	// sent ones that failed (k6's http_req_failed).
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// Classes counts outcomes by class, zero counts left out.
	Classes map[string]int64 `json:"classes"`
	// P50 and P99 are latency percentiles in milliseconds, 0 when the
	// bucket has no latencies.
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

// NewJournal assembles the journal of a run. v and sc may be nil when
// the run failed before a verdict; exitCode is the process's.
func NewJournal(p *Plan, rec *outcome.Recorder, tl Timeline, v *Verdict, sc *Scorecard, exitCode int) *Journal {
	j := &Journal{Schema: JournalSchema, Experiment: p.Name, Seed: p.Seed, Plan: p, Start: tl.Start, End: tl.End,
		Phases: tl.Phases, Faults: tl.Faults, Abort: tl.Abort, Series: []Sample{}, Verdict: v, Scorecard: sc, ExitCode: exitCode}
	if j.Phases == nil {
		j.Phases = []PhaseRecord{}
	}
	if j.Faults == nil {
		j.Faults = []FaultRecord{}
	}
	for _, s := range collect(p, rec, tl.Start, tl.End) {
		smp := Sample{Start: s.start, Requests: s.summary.Total, Errors: s.summary.RequestsFailed(), Classes: map[string]int64{}, P50: s.p50, P99: s.p99}
		for c, n := range s.summary.ByClass {
			if n != 0 {
				smp.Classes[outcome.Class(c).String()] = n
			}
		}
		j.Series = append(j.Series, smp)
	}
	return j
}

// Encode writes the journal as indented JSON.
func (j *Journal) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // thresholds hold < and >
	if err := enc.Encode(j); err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	return nil
}

// DecodeJournal reads a journal, rejecting unknown fields and schemas
// other than JournalSchema. The plan's SLOs and thresholds come back as
// their ids and text only: a decoded journal is a record to report on,
// not a plan to run.
func DecodeJournal(r io.Reader) (*Journal, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	var head struct {
		Schema string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	if head.Schema != JournalSchema {
		return nil, fmt.Errorf("reading journal: schema %q is not %q", head.Schema, JournalSchema)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j Journal
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("reading journal: data after the journal")
	}
	return &j, nil
}
