package load

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/relia-dev/relia/outcome"
)

// MinLateToJudge is the least number of late arrivals that can make a run
// inconclusive: a handful of late sends in a short run is noise, not a
// starved generator.
const MinLateToJudge = 10

// The causes Health names are judged against these limits.
const (
	// saturatedShare is the share of its usable cores above which the
	// generator's process counts as CPU-saturated.
	saturatedShare = 0.9
	// pressuredShare is the share of the run during which some task of the
	// host waited for a CPU above which the host counts as oversubscribed.
	pressuredShare = 0.25
)

// LoadAdvice is what a user of relia load can do about a generator that
// could not keep its schedule.
const LoadAdvice = "lower the rate, or split the run with --segment"

// GeneratorStats is what the load generator measured about itself while
// the load ran, beyond the schedule lag its Lag recorder holds. Results
// keep them, so a merged result judges its generators too.
type GeneratorStats struct {
	// CPU is the process's CPU time (user and system) over Wall, the real
	// time the load ran; Cores is how many CPUs the process may run on.
	// HasCPU is false where the CPU time cannot be read (outside Linux).
	CPU, Wall time.Duration
	Cores     int
	HasCPU    bool
	// Stall is how long, over Wall, some runnable task of the host waited
	// for a CPU (/proc/pressure/cpu, "some"). HasStall is false where the
	// kernel does not report CPU pressure.
	Stall    time.Duration
	HasStall bool
	// NoConnection counts requests that waited their whole timeout for a
	// connection because the pool's every connection stayed busy; they
	// are recorded as dropped, never sent.
	NoConnection int64
	// PeakInFlight is the most requests in flight at once (open model),
	// against MaxInFlight, the cap.
	PeakInFlight, MaxInFlight int
	// Samples are the per-second measurements, for charts.
	Samples []HealthSample
}

// HealthSample is the generator's CPU use and the host's CPU pressure
// over the second before T.
type HealthSample struct {
	T time.Time `json:"t"`
	// CPU is the cores the process kept busy (1.5: one and a half); -1
	// when unknown.
	CPU float64 `json:"cpu_cores"`
	// Pressure is the share of the second during which some task waited
	// for a CPU; -1 when unknown.
	Pressure float64 `json:"cpu_pressure"`
}

// procStat is one reading of the process's CPU time and the host's CPU
// pressure (see readProcStat).
type procStat struct {
	at       time.Time
	cpu      time.Duration
	hasCPU   bool
	stall    time.Duration
	hasStall bool
}

// healthMeter turns readings of procStat into GeneratorStats.
type healthMeter struct {
	first, last procStat
}

func newHealthMeter() *healthMeter {
	st := readProcStat()
	return &healthMeter{first: st, last: st}
}

// sample reads the CPU figures and returns the second's sample, stamped t.
func (m *healthMeter) sample(t time.Time) HealthSample {
	st := readProcStat()
	s := HealthSample{T: t.UTC(), CPU: -1, Pressure: -1}
	if wall := st.at.Sub(m.last.at); wall > 0 {
		if st.hasCPU && m.last.hasCPU {
			s.CPU = round3(float64(st.cpu-m.last.cpu) / float64(wall))
		}
		if st.hasStall && m.last.hasStall {
			s.Pressure = round3(min(float64(st.stall-m.last.stall)/float64(wall), 1))
		}
	}
	m.last = st
	return s
}

// stats sums up the readings from the first to a last one taken now.
func (m *healthMeter) stats() GeneratorStats {
	end := readProcStat()
	g := GeneratorStats{Wall: end.at.Sub(m.first.at), Cores: runtime.NumCPU()}
	if end.hasCPU && m.first.hasCPU {
		g.CPU, g.HasCPU = end.cpu-m.first.cpu, true
	}
	if end.hasStall && m.first.hasStall {
		g.Stall, g.HasStall = end.stall-m.first.stall, true
	}
	return g
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// merge adds the stats of another process's segment of the same test:
// CPU time, cores and counts add up, wall time and pressure are the
// longest and the highest, samples of the same second add their CPU.
func (g *GeneratorStats) merge(o GeneratorStats) {
	g.CPU += o.CPU
	g.Cores += o.Cores
	g.HasCPU = g.HasCPU && o.HasCPU
	if o.Wall > g.Wall {
		g.Wall = o.Wall
	}
	if o.Stall > g.Stall {
		g.Stall = o.Stall
	}
	g.HasStall = g.HasStall && o.HasStall
	g.NoConnection += o.NoConnection
	g.PeakInFlight += o.PeakInFlight
	g.MaxInFlight += o.MaxInFlight
	at := map[time.Time]int{}
	for i, s := range g.Samples {
		at[s.T] = i
	}
	for _, s := range o.Samples {
		i, ok := at[s.T]
		if !ok {
			at[s.T] = len(g.Samples)
			g.Samples = append(g.Samples, s)
			continue
		}
		mine := &g.Samples[i]
		if mine.CPU < 0 || s.CPU < 0 {
			mine.CPU = -1
		} else {
			mine.CPU += s.CPU
		}
		mine.Pressure = max(mine.Pressure, s.Pressure)
	}
	slices.SortFunc(g.Samples, func(a, b HealthSample) int { return a.T.Compare(b.T) })
}

// Health is the generator's judgement of itself: whether it kept the
// open model's schedule within the tolerance the scenario states
// (spec.load.lateAfter and minOnTime), with the figures behind it. A run
// whose generator did not is inconclusive: its figures are reported but
// the service is not judged on them, because the lateness would be
// relia's, not the service's.
//
// The rule: an open-model run is inconclusive when more than 1-MinOnTime
// of the requests it sent (and at least MinLateToJudge of them) left
// more than LateAfter after their scheduled time. Dropped arrivals (the
// in-flight cap reached because responses were slow) are reported but do
// not count against the generator: the service held the requests. The
// closed model has no schedule to keep; its health is reported, never
// judged.
type Health struct {
	Model Model `json:"model"`
	// Sent counts the open model's arrivals that were sent; Late those
	// sent more than LateAfter after they were due; LateShare is Late
	// over Sent. Dropped counts the arrivals dropped at the in-flight cap
	// or for want of a connection (NoConnection of them).
	Sent         int64         `json:"sent"`
	Late         int64         `json:"late"`
	LateShare    float64       `json:"late_share"`
	Dropped      int64         `json:"dropped"`
	NoConnection int64         `json:"no_connection"`
	LateAfter    time.Duration `json:"late_after_ns"`
	// MinOnTime is the share of the sent arrivals that must be on time.
	MinOnTime float64 `json:"min_on_time"`
	// Lag percentiles: how late requests were sent.
	LagP50 time.Duration `json:"lag_p50_ns"`
	LagP90 time.Duration `json:"lag_p90_ns"`
	LagP99 time.Duration `json:"lag_p99_ns"`
	LagMax time.Duration `json:"lag_max_ns"`
	// CPUCores is the cores the process kept busy on average, of Cores;
	// HasCPU is false when unknown.
	CPUCores float64 `json:"cpu_cores"`
	Cores    int     `json:"cores"`
	HasCPU   bool    `json:"has_cpu"`
	// Pressure is the share of the run during which some task of the host
	// waited for a CPU; HasPressure is false when the host does not say.
	Pressure    float64 `json:"cpu_pressure"`
	HasPressure bool    `json:"has_cpu_pressure"`
	// PeakInFlight is the most requests in flight at once, against the
	// cap MaxInFlight.
	PeakInFlight int `json:"peak_in_flight"`
	MaxInFlight  int `json:"max_in_flight"`
	// Conclusive is false when the generator could not keep its schedule;
	// Reason then says how late it was and why, as far as the CPU figures
	// tell.
	Conclusive bool   `json:"conclusive"`
	Reason     string `json:"reason,omitempty"`
}

// judgeHealth builds the Health of a run from its lag, its dropped
// arrivals and its generator stats.
func judgeHealth(model Model, lag outcome.Summary, dropped int64, lateAfter time.Duration, minOnTime float64, g GeneratorStats) Health {
	l := lag.Latency
	h := Health{Model: model, Sent: l.Count(), Dropped: dropped, NoConnection: g.NoConnection, LateAfter: lateAfter,
		MinOnTime: minOnTime, LagP50: l.Quantile(0.5), LagP90: l.Quantile(0.9), LagP99: l.Quantile(0.99), LagMax: l.Max(),
		Cores: g.Cores, HasCPU: g.HasCPU, HasPressure: g.HasStall, PeakInFlight: g.PeakInFlight, MaxInFlight: g.MaxInFlight,
		Conclusive: true}
	h.Late = h.Sent - l.CountAtOrBelow(lateAfter)
	if h.Sent > 0 {
		h.LateShare = float64(h.Late) / float64(h.Sent)
	}
	if g.Wall > 0 {
		if g.HasCPU {
			h.CPUCores = round3(float64(g.CPU) / float64(g.Wall))
		}
		if g.HasStall {
			h.Pressure = round3(min(float64(g.Stall)/float64(g.Wall), 1))
		}
	}
	if model == Open && minOnTime > 0 && h.Late >= MinLateToJudge && h.LateShare > 1-minOnTime {
		h.Conclusive = false
		h.Reason = fmt.Sprintf("the generator sent %s of requests more than %s late (%d of %d; schedule lag p99 %s, max %s): %s",
			pct(h.LateShare), outcome.FormatDuration(lateAfter), h.Late, h.Sent, outcome.FormatDuration(h.LagP99),
			outcome.FormatDuration(h.LagMax), h.cause())
	}
	return h
}

// cause says what the CPU figures tell about why the generator was late.
func (h Health) cause() string {
	use := ""
	if h.HasCPU {
		use = fmt.Sprintf("relia used %.2f of %d cores", h.CPUCores, h.Cores)
	}
	switch {
	case h.HasCPU && h.CPUCores >= saturatedShare*float64(h.Cores):
		return "its CPU was saturated (" + use + ")"
	case h.HasPressure && h.Pressure >= pressuredShare:
		s := fmt.Sprintf("the host's CPUs were oversubscribed: runnable tasks waited for a CPU %s of the time (/proc/pressure/cpu)", pct(h.Pressure))
		if use != "" {
			s += " while " + use
		}
		return s
	case !h.HasCPU && !h.HasPressure:
		return "the cause is unknown: this host reports neither relia's CPU time nor CPU pressure"
	}
	var known []string
	if use != "" {
		known = append(known, use)
	}
	if h.HasPressure {
		known = append(known, fmt.Sprintf("tasks waited for a CPU %s of the time", pct(h.Pressure)))
	} else {
		known = append(known, "the host does not report CPU pressure (/proc/pressure/cpu)")
	}
	return "neither relia's CPU nor the host's was saturated (" + strings.Join(known, ", ") +
		"): look for pauses of the whole process or machine (swapping, a throttled container, a suspended VM)"
}

// Text is the generator's health in one line for summaries: how many
// arrivals left late and how late, what was dropped, the CPU figures.
func (h Health) Text() string {
	var parts []string
	if h.Model == Open {
		parts = append(parts, fmt.Sprintf("%d of %d sent more than %s late (%s), schedule lag p50 %s p99 %s max %s",
			h.Late, h.Sent, outcome.FormatDuration(h.LateAfter), pct(h.LateShare), outcome.FormatDuration(h.LagP50),
			outcome.FormatDuration(h.LagP99), outcome.FormatDuration(h.LagMax)))
		if h.Dropped > 0 {
			d := fmt.Sprintf("%d dropped", h.Dropped)
			if h.NoConnection > 0 {
				d += fmt.Sprintf(" (%d for want of a free connection)", h.NoConnection)
			}
			parts = append(parts, d)
		}
		if h.MaxInFlight > 0 {
			parts = append(parts, fmt.Sprintf("in flight at most %d of %d", h.PeakInFlight, h.MaxInFlight))
		}
	} else if h.NoConnection > 0 {
		parts = append(parts, fmt.Sprintf("%d requests found no free connection", h.NoConnection))
	}
	if h.HasCPU {
		parts = append(parts, fmt.Sprintf("CPU %.2f of %d cores", h.CPUCores, h.Cores))
	} else {
		parts = append(parts, "CPU time unknown")
	}
	if h.HasPressure {
		parts = append(parts, "CPU pressure "+pct(h.Pressure))
	} else {
		parts = append(parts, "CPU pressure not reported by this host")
	}
	return strings.Join(parts, "; ")
}

// CombinedHealth judges the generator over results that ran one after
// the other as parts of one run (the phases of an experiment): their
// lags, drops and CPU figures add up, and the rule of Health applies to
// the whole with the first open-model result's lateAfter and minOnTime.
// The reason carries no advice; the caller knows what its user can
// change.
func CombinedHealth(results []*Result) Health {
	lag := newRecorder()
	var dropped int64
	var g GeneratorStats
	model, lateAfter, minOnTime := Closed, DefaultLateAfter, DefaultMinOnTime
	first := true
	for _, r := range results {
		if r == nil {
			continue
		}
		if r.Model == Open && model != Open {
			model, lateAfter, minOnTime = Open, r.LateAfter, r.MinOnTime
		}
		_ = lag.Merge(r.Lag) // recorders of one process share their options
		dropped += r.Requests.Total().ByClass[outcome.ClassDropped]
		rg := r.Generator
		if first {
			g = GeneratorStats{Cores: rg.Cores, HasCPU: rg.HasCPU, HasStall: rg.HasStall}
			first = false
		}
		g.CPU += rg.CPU
		g.Wall += rg.Wall
		g.Stall += rg.Stall
		g.HasCPU = g.HasCPU && rg.HasCPU
		g.HasStall = g.HasStall && rg.HasStall
		g.NoConnection += rg.NoConnection
		g.PeakInFlight = max(g.PeakInFlight, rg.PeakInFlight)
		g.MaxInFlight = max(g.MaxInFlight, rg.MaxInFlight)
	}
	return judgeHealth(model, lag.Total(), dropped, lateAfter, minOnTime, g)
}

// HealthFigure is one of the generator's figures as a report shows it.
type HealthFigure struct {
	Label, Value, Note string
	// Warn marks the figure that makes the run inconclusive.
	Warn bool
}

// Figures are the generator's headline figures for reports: whether it
// kept its schedule, how many requests it sent late and how late, its
// CPU and the host's CPU pressure.
func (h Health) Figures() []HealthFigure {
	figs := []HealthFigure{{Label: "Generator", Value: "kept its schedule"}}
	if !h.Conclusive {
		figs[0] = HealthFigure{Label: "Generator", Value: "could not keep its schedule", Note: "the run is inconclusive", Warn: true}
	}
	if h.Model == Open {
		figs = append(figs,
			HealthFigure{Label: "Sent late", Value: pct(h.LateShare), Warn: !h.Conclusive,
				Note: fmt.Sprintf("%d of %d over %s; tolerance %s", h.Late, h.Sent, outcome.FormatDuration(h.LateAfter), pct(1-h.MinOnTime))},
			HealthFigure{Label: "Schedule lag p99", Value: outcome.FormatDuration(h.LagP99), Note: "max " + outcome.FormatDuration(h.LagMax)})
		if h.Dropped > 0 {
			figs = append(figs, HealthFigure{Label: "Dropped", Value: fmt.Sprint(h.Dropped), Note: fmt.Sprintf("%d for want of a connection", h.NoConnection)})
		}
	}
	if h.HasCPU {
		figs = append(figs, HealthFigure{Label: "CPU", Value: fmt.Sprintf("%.2f cores", h.CPUCores), Note: fmt.Sprintf("of %d", h.Cores)})
	}
	if h.HasPressure {
		figs = append(figs, HealthFigure{Label: "CPU pressure", Value: pct(h.Pressure), Note: "/proc/pressure/cpu"})
	}
	return figs
}

// GeneratorMeter measures the generator's CPU and the host's CPU pressure
// for load of another kind than relia load's own (LLM streams), so that
// its Health is judged by the same rule (JudgeHealth).
type GeneratorMeter struct{ m *healthMeter }

// NewGeneratorMeter starts measuring now.
func NewGeneratorMeter() *GeneratorMeter { return &GeneratorMeter{m: newHealthMeter()} }

// Sample returns the CPU figures of the time since the last sample,
// stamped t.
func (g *GeneratorMeter) Sample(t time.Time) HealthSample { return g.m.sample(t) }

// Stats sums up what was measured from the start until now.
func (g *GeneratorMeter) Stats() GeneratorStats { return g.m.stats() }

// Merge adds the stats of another process's segment of the same test,
// as relia load merge does.
func (g *GeneratorStats) Merge(o GeneratorStats) { g.merge(o) }

// JudgeHealth judges a generator by Health's rule from its schedule lag,
// its dropped arrivals and its stats.
func JudgeHealth(model Model, lag outcome.Summary, dropped int64, lateAfter time.Duration, minOnTime float64, g GeneratorStats) Health {
	return judgeHealth(model, lag, dropped, lateAfter, minOnTime, g)
}
