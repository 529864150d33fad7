package capacity

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/internal/shop"
)

func TestParseTraffic(t *testing.T) {
	t.Parallel()
	tr, err := ParseTraffic("day.csv", strings.NewReader("t,rate\n# the morning\n0,100\n90s 150\n3m\t300.5\n\n240,300.5\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Traffic{{0, 100}, {90 * time.Second, 150}, {3 * time.Minute, 300.5}, {4 * time.Minute, 300.5}}
	if len(tr) != len(want) {
		t.Fatalf("%+v", tr)
	}
	for i := range want {
		if tr[i] != want[i] {
			t.Errorf("point %d: %+v, want %+v", i, tr[i], want[i])
		}
	}
	if r := tr.RateAt(45 * time.Second); r != 125 {
		t.Errorf("rate at 45s %v, want 125 (halfway between 100 and 150)", r)
	}
	back, err := ParseTraffic("again", bytes.NewReader(tr.Format()))
	if err != nil || len(back) != len(tr) || back[2] != tr[2] {
		t.Errorf("round trip %+v: %v", back, err)
	}
	for _, bad := range []struct{ in, msg string }{
		{"0,1\n1,x\n", "day.csv:2: rate \"x\" is not a number"},
		{"0,1\n-5,2\n", "day.csv:2: time \"-5\""},
		{"10,1\n5,2\n", "day.csv:2: point 2 at 5s comes before the one at 10s"},
		{"0,1,2\n", "day.csv:1: want two fields"},
		{"t,rate\n", "day.csv: no points"},
		{"0,-3\n", "day.csv:1: point 1"},
	} {
		_, err := ParseTraffic("day.csv", strings.NewReader(bad.in))
		if err == nil || !strings.Contains(err.Error(), bad.msg) {
			t.Errorf("%q: got %v, want %q", bad.in, err, bad.msg)
		}
	}
}

func TestSpikeAndSteps(t *testing.T) {
	t.Parallel()
	// a step change rises within the second the curve is sampled at
	tr := Traffic{{0, 20}, {12 * time.Second, 20}, {12 * time.Second, 200}, {30 * time.Second, 200}}
	sp := tr.Spike()
	if sp.Factor != 10 || sp.Start != 11*time.Second || sp.Rise != time.Second || sp.String() != "a 10x spike in 1s" {
		t.Errorf("%+v %q", sp, sp.String())
	}
}

// TestSpikeOfACycleThatPeaksFirst: a forecast of a daily cycle (30 to
// 210 an hour) that starts three hours before its highest hour still
// swings from its night to its day; its spike is that swing, not the
// last three hours' climb. A curve that opens at its peak, falls and
// climbs back has the climb as its spike.
func TestSpikeOfACycleThatPeaksFirst(t *testing.T) {
	t.Parallel()
	var day Traffic
	for h := range 3 * 24 {
		rate := 120 + 90*math.Sin(2*math.Pi*float64(h+3)/24)
		if h < 24 {
			rate *= 1.05 // the first day's peak is the highest
		}
		day = append(day, RatePoint{At: time.Duration(h) * time.Hour, Rate: rate / 3600})
	}
	sp := day.Spike()
	if sp.Factor < 6 || sp.Base > 33.0/3600 || sp.Start < 12*time.Hour || sp.Start > 24*time.Hour || sp.Rise < 5*time.Hour || sp.Rise > 12*time.Hour {
		t.Errorf("daily cycle: a %vx spike from %v req/s at %s in %s, want the night-to-day swing of about 7x", sp.Factor, sp.Base, sp.Start, sp.Rise)
	}

	again := Traffic{{0, 100}, {10 * time.Second, 100}, {20 * time.Second, 10}, {60 * time.Second, 10}, {61 * time.Second, 95}, {90 * time.Second, 95}}
	if sp := again.Spike(); sp.Factor != 10 || sp.Start != 60*time.Second || sp.Rise != time.Second {
		t.Errorf("fall and climb back: %s at %s, want a 10x spike in 1s at 1m", sp, sp.Start)
	}
	// Falling away from the peak is no spike.
	falling := Traffic{{0, 100}, {30 * time.Second, 10}}
	if sp := falling.Spike(); sp.Factor != 1 || sp.Rise != 0 {
		t.Errorf("falling: %+v", sp)
	}
}

func FuzzParseTraffic(f *testing.F) {
	f.Add("t,rate\n0,100\n90s,150\n")
	f.Add("0 1\n1e3 2\n")
	f.Fuzz(func(t *testing.T, in string) {
		tr, err := ParseTraffic("fuzz", strings.NewReader(in))
		if err != nil {
			return
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("parsed an invalid curve %+v: %v", tr, err)
		}
		back, err := ParseTraffic("again", bytes.NewReader(tr.Format()))
		if err != nil || len(back) != len(tr) {
			t.Fatalf("round trip of %+v: %+v, %v", tr, back, err)
		}
	})
}

func TestBlackFridayIsTheDemosSpike(t *testing.T) {
	t.Parallel()
	tr, err := BlackFriday(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// relia demo: 6 users a second (19.2 req/s) for 12 s, a rise to ten
	// times that within a second, held, back; a minute in all
	base := float64(experiment.DefaultDemoRate) * shop.RequestsPerUser
	if tr.End() != time.Minute || tr.RateAt(5*time.Second) != base || math.Abs(tr.RateAt(16*time.Second)-10*base) > 1e-9 || tr.RateAt(40*time.Second) != base {
		t.Errorf("curve %+v", tr)
	}
	if sp := tr.Spike(); math.Abs(sp.Factor-10) > 1e-9 || sp.Rise > 2*time.Second || sp.Start < 11*time.Second || sp.Start > 12*time.Second {
		t.Errorf("spike %+v", sp)
	}
	big, err := BlackFriday(100, 2*time.Minute)
	if err != nil || big.End() != 2*time.Minute {
		t.Fatalf("%v %+v", err, big)
	}
	if _, peak := big.Peak(); math.Abs(peak-1000) > 1e-9 {
		t.Errorf("peak %v, want 10 × 100", peak)
	}
}
