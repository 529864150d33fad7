package shop

import (
	"strconv"
	"strings"
	"testing"
)

func TestRecommendations(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		resilient bool
		kill      int // catalog replicas killed, of 3
		status    int
		source    string
		fallback  string
	}{
		{"healthy", false, 0, 200, "personalised", ""},
		{"healthy, resilient", true, 0, 200, "personalised", ""},
		// The resilient service retries a failed call on the next replica.
		{"one replica down, resilient", true, 1, 200, "personalised", ""},
		{"catalog down", false, 3, 502, "", ""},
		{"catalog down, resilient", true, 3, 200, "popular", "popular"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startShop(t, Options{Resilient: tc.resilient})
			for i := range tc.kill {
				s.Catalog(i).Kill()
			}
			c := testClient(t)
			// Six calls go round every replica twice.
			for u := 1; u <= 6; u++ {
				a := mustCall(t, c, "GET", s.Endpoints()[ServiceRecommendations][0]+"/recommendations/"+strconv.Itoa(u), "")
				if a.status != tc.status || a.header.Get("X-Shop-Fallback") != tc.fallback {
					t.Fatalf("user %d: %d %s (fallback %q), want %d (fallback %q)", u, a.status, a.body, a.header.Get("X-Shop-Fallback"), tc.status, tc.fallback)
				}
				if tc.status != 200 {
					continue
				}
				var rec recommendation
				a.json(t, &rec)
				if rec.Source != tc.source || rec.UserID != u || len(rec.Items) != numRecommended {
					t.Fatalf("user %d: %+v, want %d items from %s", u, rec, numRecommended, tc.source)
				}
			}
		})
	}
}

func TestRecommendationsAreStable(t *testing.T) {
	t.Parallel()
	s := startShop(t, Options{Seed: 1})
	c := testClient(t)
	url := s.Endpoints()[ServiceRecommendations][0] + "/recommendations/77"
	first := mustCall(t, c, "GET", url, "").body
	for range 3 {
		if b := mustCall(t, c, "GET", url, "").body; b != first {
			t.Fatalf("recommendations changed: %s, then %s", first, b)
		}
	}
	if strings.Contains(first, `"source":"popular"`) {
		t.Error("a healthy shop fell back")
	}
}
