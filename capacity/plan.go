package capacity

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Defaults of a plan.
const (
	DefaultHeadroom    = 0.3
	DefaultUtilisation = 0.7
)

// PlanInput is what a replica plan is computed from.
type PlanInput struct {
	// Capacity is the throughput one replica sustains within its SLOs,
	// in requests per second: the measured knee, or the model's.
	Capacity float64 `json:"capacity_rps"`
	// CapacitySource says where Capacity comes from.
	CapacitySource string `json:"capacity_source"`
	// Peak is the request rate to plan for, PeakSource where it comes
	// from; Base, when known, is the rate outside the peak.
	Peak       float64 `json:"peak_rps"`
	PeakSource string  `json:"peak_source"`
	Base       float64 `json:"base_rps,omitempty"`
	// Headroom is the share added on top of the peak (0.3: 30%);
	// negative means none.
	Headroom float64 `json:"headroom"`
	// Utilisation is the share of its capacity each replica is planned to
	// run at (0.7): the autoscaler's target, which leaves room for the
	// time it takes to react.
	Utilisation float64 `json:"utilisation"`
	// Spare is the number of replicas that may fail at peak with the rest
	// still enough (1 for N+1).
	Spare int `json:"spare"`
	// Zones, when 2 or more, spreads the replicas evenly over that many
	// zones and plans for losing the largest.
	Zones int `json:"zones"`
}

// Plan is a replica plan with its arithmetic.
type Plan struct {
	Input PlanInput `json:"input"`
	// PerReplica is the request rate each replica is planned to carry:
	// Capacity × Utilisation, the autoscaler's target per replica.
	PerReplica float64 `json:"per_replica_rps"`
	// ForPeak is the replicas the peak with headroom needs, ForBase those
	// the base rate needs; both before failure tolerance.
	ForPeak int `json:"for_peak"`
	ForBase int `json:"for_base"`
	// MinReplicas and MaxReplicas are the autoscaler's bounds with the
	// failure tolerance: enough for the base rate, and for the peak.
	MinReplicas int `json:"min_replicas"`
	MaxReplicas int `json:"max_replicas"`
	// Steps is the arithmetic, one line each, as the terminal and the
	// report show it.
	Steps []string `json:"steps"`
}

// NewPlan computes replicas for the peak: the peak with headroom over
// what one replica carries at the planned utilisation, rounded up, then
// failure tolerance on top: Spare more (N+k), and with Zones enough that
// losing the largest zone leaves what the load needs. The spreadsheet's
// rule, replicas × target ÷ current × 1.3, is the special case where
// Capacity × Utilisation is the current load per replica, Headroom 0.3
// and no failure tolerance.
func NewPlan(in PlanInput) (*Plan, error) {
	if in.Headroom == 0 {
		in.Headroom = DefaultHeadroom
	} else if in.Headroom < 0 {
		in.Headroom = 0
	}
	if in.Utilisation == 0 {
		in.Utilisation = DefaultUtilisation
	}
	var errs []error
	if !(in.Capacity > 0) || math.IsInf(in.Capacity, 0) {
		errs = append(errs, fmt.Errorf("capacity %v req/s: want a positive rate", in.Capacity))
	}
	if !(in.Peak > 0) || math.IsInf(in.Peak, 0) {
		errs = append(errs, fmt.Errorf("peak %v req/s: want a positive rate", in.Peak))
	}
	if in.Base < 0 || in.Base > in.Peak {
		errs = append(errs, fmt.Errorf("base %v req/s: want 0 to the peak", in.Base))
	}
	if !(in.Utilisation > 0 && in.Utilisation <= 1) {
		errs = append(errs, fmt.Errorf("utilisation %v: want a share in (0, 1]", in.Utilisation))
	}
	if in.Headroom > 10 || math.IsNaN(in.Headroom) {
		errs = append(errs, fmt.Errorf("headroom %v: want a share such as 0.3", in.Headroom))
	}
	if in.Spare < 0 || in.Zones < 0 || in.Zones == 1 {
		errs = append(errs, fmt.Errorf("spare %d and zones %d: want spare >= 0 and zones 0 (none) or 2 and more", in.Spare, in.Zones))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("planning: %w", err)
	}
	p := &Plan{Input: in, PerReplica: in.Capacity * in.Utilisation}
	line := func(format string, args ...any) { p.Steps = append(p.Steps, fmt.Sprintf(format, args...)) }
	line("per replica: %s req/s capacity (%s) × %s utilisation = %s req/s", fmtNum(in.Capacity), in.CapacitySource, fmtPct(in.Utilisation), fmtNum(p.PerReplica))
	load := in.Peak * (1 + in.Headroom)
	p.ForPeak = ceilInt(load / p.PerReplica)
	line("peak: %s req/s (%s) × (1 + %s headroom) = %s req/s; ÷ %s req/s per replica = %s → %d replicas",
		fmtNum(in.Peak), in.PeakSource, fmtPct(in.Headroom), fmtNum(load), fmtNum(p.PerReplica), fmtNum2(load/p.PerReplica), p.ForPeak)
	p.MaxReplicas = p.tolerant(p.ForPeak, "peak")
	p.ForBase = max(ceilInt(in.Base/p.PerReplica), 1)
	if in.Base > 0 {
		line("base: %s req/s ÷ %s req/s per replica = %s → %d %s", fmtNum(in.Base), fmtNum(p.PerReplica), fmtNum2(in.Base/p.PerReplica), p.ForBase, plural(p.ForBase, "replica", "replicas"))
	} else {
		line("base: not given → 1 replica")
	}
	p.MinReplicas = p.tolerant(p.ForBase, "base")
	line("autoscaler: minReplicas %d, maxReplicas %d, target %s req/s per replica", p.MinReplicas, p.MaxReplicas, fmtNum(p.PerReplica))
	return p, nil
}

// tolerant adds the failure tolerance to n replicas needed, writing the
// arithmetic: Spare more (N+k), and with Zones the fewest r for which
// losing the largest of the zones (ceil(r/Zones) replicas when spread
// evenly) leaves n.
func (p *Plan) tolerant(n int, what string) int {
	in := p.Input
	out := n
	if in.Spare > 0 {
		out = n + in.Spare
		p.Steps = append(p.Steps, fmt.Sprintf("%s, N+%d: %d + %d = %d replicas", what, in.Spare, n, in.Spare, out))
	}
	if in.Zones >= 2 {
		r := max(n, in.Zones)
		largest := func(r int) int { return ceilInt(float64(r) / float64(in.Zones)) }
		for r-largest(r) < n {
			r++
		}
		p.Steps = append(p.Steps, fmt.Sprintf("%s, %d zones: %d replicas put at most %d in one zone; losing it leaves %d >= %d → %d replicas",
			what, in.Zones, r, largest(r), r-largest(r), n, max(r, out)))
		out = max(r, out)
	}
	return out
}

// Spreadsheet is the rule many teams plan with: current replicas ×
// target rate ÷ current rate × 1.3, rounded up. NewPlan gives the same
// count for Capacity × Utilisation = current rate ÷ current replicas,
// Headroom 0.3 and no failure tolerance.
func Spreadsheet(replicas int, current, target float64) int {
	return ceilInt(float64(replicas) * target / current * 1.3)
}

// Text writes the plan's arithmetic as the terminal shows it.
func (p *Plan) Text() string {
	var b strings.Builder
	for _, s := range p.Steps {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

// ceilInt rounds up, treating values within 1e-9 of a whole number as
// that number, so that 5.0000000001 from floating-point arithmetic does
// not add a replica.
func ceilInt(v float64) int {
	r := math.Round(v)
	if math.Abs(v-r) < 1e-9 {
		return int(r)
	}
	return int(math.Ceil(v))
}

func fmtPct(v float64) string { return fmtNum(100*v) + "%" }

// fmtNum2 writes a quotient with two decimals.
func fmtNum2(v float64) string { return fmt.Sprintf("%.2f", v) }

// plural picks the word for n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
