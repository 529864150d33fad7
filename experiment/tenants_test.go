package experiment

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/llmload"
	"github.com/relia-dev/relia/outcome"
)

// TestTenantCallsCountQuotaRefusalsApart: an llm load's calls are
// counted per tenant (the user its prompt names), each once: served,
// refused by the tenant's own quota, or failed. A quota refusal is
// answered for availability and left out of goodput, as before, but it
// is no longer lost among the answered calls; a 429 without the quota's
// mark (a rate limit, a provider's) is a failure.
func TestTenantCallsCountQuotaRefusalsApart(t *testing.T) {
	t.Parallel()
	r := &runState{onsets: NewOnsets(&Plan{}, time.Second)}
	var err error
	if r.rec, err = outcome.NewRecorder(outcome.Options{}); err != nil {
		t.Fatal(err)
	}
	if r.measures, err = newLLMRecorders(); err != nil {
		t.Fatal(err)
	}
	observe := r.observer(&LLMLoad{Users: []string{"acme", "initech"}, ExpectedStatuses: []int{http.StatusTooManyRequests}})
	due := time.Unix(1_700_000_000, 0)
	served := func(prompt int) *llmload.Sample {
		return &llmload.Sample{Prompt: prompt, Due: due, FirstToken: due.Add(80 * time.Millisecond), End: due.Add(200 * time.Millisecond),
			Status: 200, Ending: llmload.EndDone, Class: outcome.ClassOK, OutputTokens: 24}
	}
	status := func(prompt, code int, quota bool) *llmload.Sample {
		return &llmload.Sample{Prompt: prompt, Due: due, End: due.Add(time.Millisecond), Status: code, Ending: llmload.EndStatus,
			Class: outcome.ClassStatus, QuotaRefused: quota}
	}
	for _, s := range []*llmload.Sample{
		served(0), served(0), status(0, 502, false),
		served(1), status(1, 429, true), status(1, 429, true), status(1, 429, false),
		{Prompt: 1, Due: due, Ending: llmload.EndDropped, Class: outcome.ClassDropped},
		{Prompt: 0, Due: due, End: due.Add(time.Second), Status: 200, Ending: llmload.EndStalled, Class: outcome.ClassTimeout},
	} {
		observe(s)
	}
	want := []TenantCalls{
		{Tenant: "acme", Calls: 4, Served: 2, Failed: 2},
		{Tenant: "initech", Calls: 5, Served: 1, RefusedByQuota: 2, Failed: 2},
	}
	if got := r.measures.tenants.counts(); !slices.Equal(got, want) {
		t.Fatalf("tenants %+v, want %+v", got, want)
	}
	// The requests measure (availability) counts both quota refusals as
	// answered, and the unmarked 429 too, being an expected status; goodput
	// leaves all three out.
	if sum := r.rec.Total(); sum.ByClass[outcome.ClassOK] != 6 || sum.Total != 9 {
		t.Errorf("requests measure: %d ok of %d, want 6 of 9", sum.ByClass[outcome.ClassOK], sum.Total)
	}
	if good := r.measures.goodput.Total(); good.Total != 6 {
		t.Errorf("goodput counted %d requests, want 6: the expected refusals left out", good.Total)
	}

	// The terminal and the report show the same figures.
	v := &Verdict{Tenants: want}
	text := Summary(&Plan{Name: "x"}, v, Scorecard{})
	for _, row := range []string{"acme      4       2                 0       2", "initech      5       1                 2       2"} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), strings.Join(strings.Fields(row), " ")) {
			t.Errorf("summary lacks %q:\n%s", row, text)
		}
	}
	sec := tenantSection(want)
	if got := sec.Tables[0].Rows[1]; !slices.Equal(got, []string{"initech", "5", "1", "2", "2"}) {
		t.Errorf("report row %q", got)
	}
}
