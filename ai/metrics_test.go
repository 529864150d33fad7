package ai

import (
	"fmt"
	"testing"
	"time"

	"github.com/relia-dev/relia/ai/mock"
	"github.com/relia-dev/relia/clock"
)

// TestUnknownModelsShareOneLabel: clients choose the model names they
// send, so calls naming models no route serves must not each make a
// metric series (a hostile client would grow the registry without
// bound). They are counted under one label value; a routed model keeps
// its name.
func TestUnknownModelsShareOneLabel(t *testing.T) {
	t.Parallel()
	fc := clock.NewFake(time.Time{})
	_, a := startMock(t, mock.Options{Clock: fc})
	_, b := startMock(t, mock.Options{Clock: fc})
	g := startService(t, failoverConfig, fc, Options{}, a, b)
	for i := range 50 {
		if code, body := chatOnce(t, g.url, fmt.Sprintf(`{"model":"no-such-model-%d","messages":[{"role":"user","content":"hi"}]}`, i)); code != 404 {
			t.Fatalf("unknown model: %d %s", code, body)
		}
	}
	if code, body := chatOnce(t, g.url, hello); code != 200 {
		t.Fatalf("routed model: %d %s", code, body)
	}
	families, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	models := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "gen_ai_client_operation_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "gen_ai_request_model" {
					models[l.GetValue()] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	if len(models) != 2 || models[otherModel] != 50 || models["gpt-4o-mini"] != 1 {
		t.Fatalf("gen_ai_request_model series: %v, want 50 calls under %q and 1 under gpt-4o-mini", models, otherModel)
	}
}
