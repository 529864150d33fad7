package capacity

import (
	"strings"
	"testing"
)

func TestPlanArithmetic(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		in         PlanInput
		peak, base int
		minR, maxR int
		wantLine   string
	}{
		// 100 req/s at 70%: 70 per replica. 1000 × 1.3 = 1300; /70 =
		// 18.57 → 19. Base 200/70 = 2.86 → 3.
		{"no tolerance", PlanInput{Capacity: 100, Peak: 1000, Base: 200}, 19, 3, 3, 19, "1300 req/s; ÷ 70 req/s per replica = 18.57 → 19 replicas"},
		{"N+1", PlanInput{Capacity: 100, Peak: 1000, Base: 200, Spare: 1}, 19, 3, 4, 20, "peak, N+1: 19 + 1 = 20 replicas"},
		// 3 zones: 19 needed; 28 puts 10 in one zone, leaving 18 < 19; 29
		// puts 10, leaving 19. Base 3: 5 puts 2 in one, leaving 3.
		{"3 zones", PlanInput{Capacity: 100, Peak: 1000, Base: 200, Zones: 3}, 19, 3, 5, 29, "losing it leaves 19 >= 19 → 29 replicas"},
		// zones and N+1: the larger of the two
		{"2 zones and N+1", PlanInput{Capacity: 100, Peak: 1000, Base: 200, Zones: 2, Spare: 1}, 19, 3, 6, 38, "2 zones: 38 replicas"},
		{"no headroom", PlanInput{Capacity: 100, Peak: 700, Headroom: -1, Utilisation: 1}, 7, 1, 1, 7, "700 req/s; ÷ 100 req/s per replica = 7.00 → 7 replicas"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := NewPlan(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if p.ForPeak != tc.peak || p.ForBase != tc.base || p.MinReplicas != tc.minR || p.MaxReplicas != tc.maxR {
				t.Errorf("for peak %d base %d, min %d max %d; want %d %d %d %d\n%s", p.ForPeak, p.ForBase, p.MinReplicas, p.MaxReplicas, tc.peak, tc.base, tc.minR, tc.maxR, p.Text())
			}
			if !strings.Contains(p.Text(), tc.wantLine) {
				t.Errorf("the arithmetic lacks %q:\n%s", tc.wantLine, p.Text())
			}
		})
	}
}

func TestPlanSpreadsheetIsASpecialCase(t *testing.T) {
	t.Parallel()
	// 6 replicas carry 900 req/s today; Black Friday brings 4000.
	for _, tc := range []struct {
		replicas        int
		current, target float64
	}{{6, 900, 4000}, {3, 250, 1000}, {10, 1200, 1300}, {1, 7, 100}} {
		perReplica := tc.current / float64(tc.replicas)
		p, err := NewPlan(PlanInput{Capacity: perReplica, Utilisation: 1, Headroom: 0.3, Peak: tc.target})
		if err != nil {
			t.Fatal(err)
		}
		if want := Spreadsheet(tc.replicas, tc.current, tc.target); p.ForPeak != want || p.MaxReplicas != want {
			t.Errorf("%+v: plan %d, spreadsheet %d", tc, p.ForPeak, want)
		}
	}
	if got := Spreadsheet(6, 900, 4000); got != 35 { // 6 × 4000 / 900 × 1.3 = 34.67
		t.Errorf("spreadsheet %d", got)
	}
}

func TestPlanRejectsImpossibleInput(t *testing.T) {
	t.Parallel()
	for _, in := range []PlanInput{
		{Capacity: 0, Peak: 10},
		{Capacity: 10, Peak: 0},
		{Capacity: 10, Peak: 10, Base: 20},
		{Capacity: 10, Peak: 10, Utilisation: 1.5},
		{Capacity: 10, Peak: 10, Zones: 1},
		{Capacity: 10, Peak: 10, Spare: -1},
	} {
		if _, err := NewPlan(in); err == nil {
			t.Errorf("%+v: want an error", in)
		}
	}
}
