package experiment

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/internal/aidemo"
)

// TestProviderFaultsEndOneByOne: one provider fault's end, which may
// come at the same moment as the next fault's start on the same
// provider, removes that fault alone. Undoing by clearing the
// simulator's faults, as the first version did, lost the stall that the
// demo starts when alpha's 429s end.
func TestProviderFaultsEndOneByOne(t *testing.T) {
	t.Parallel()
	st, err := aidemo.Start(context.Background(), aidemo.Options{Seed: 1, Resilient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := &faultRunner{target: &system{ai: st}}
	limited := PlannedFault{Name: "limited", Kind: FaultProvider, Provider: &ProviderFault{Provider: aidemo.ProviderA, Kind: "status", Status: 429, RetryAfter: 2 * time.Second, Rate: 0.5}}
	stalls := PlannedFault{Name: "stalls", Kind: FaultProvider, Provider: &ProviderFault{Provider: aidemo.ProviderA, Kind: "stall", AfterTokens: 3, Rate: 1}}
	undoLimited, _, err := r.applyProvider(limited)
	if err != nil {
		t.Fatal(err)
	}
	undoStalls, _, err := r.applyProvider(stalls)
	if err != nil {
		t.Fatal(err)
	}
	if err := undoLimited(); err != nil {
		t.Fatal(err)
	}
	want := []mock.Fault{mockFault(*stalls.Provider)}
	if got := st.Provider(aidemo.ProviderA).Faults(); !slices.Equal(got, want) {
		t.Fatalf("after the 429s ended, alpha has faults %+v; want the stall alone %+v", got, want)
	}
	if err := undoStalls(); err != nil {
		t.Fatal(err)
	}
	if got := st.Provider(aidemo.ProviderA).Faults(); len(got) != 0 {
		t.Errorf("after both ended, alpha has faults %+v", got)
	}
	if _, _, err := r.applyProvider(PlannedFault{Provider: &ProviderFault{Provider: "gamma", Kind: "stall"}}); err == nil {
		t.Error("a fault on a provider the stack lacks was applied")
	}
}
