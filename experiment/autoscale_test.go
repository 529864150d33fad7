package experiment

import (
	"strings"
	"testing"
)

func TestAutoscaleSpecIsChecked(t *testing.T) {
	t.Parallel()
	base := `kind: Experiment
version: relia/v1
metadata: {name: scaled}
spec:
  target:
    services:
      - name: api
        command: [api]
        port: 9000
        autoscale: AUTOSCALE
  slos: [{inline: {metadata: {name: a}, spec: {service: api, objective: 99%, sli: {availability: {goodClasses: [ok]}}}}}]
  phases: [{name: p, duration: 2s, load: {rate: 10}}]
`
	for _, tc := range []struct{ autoscale, want string }{
		{`{maxReplicas: 4, target: 20}`, ""},
		{`{minReplicas: 5, maxReplicas: 4, target: 20}`, "maxReplicas 4 is below minReplicas 5"},
		{`{maxReplicas: 4, target: 0}`, "target 0"},
		{`{maxReplicas: 4, target: 20, balance: random}`, `balance: "random"`},
		{`{maxReplicas: 4, target: 20, syncPeriod: 500ms}`, "syncPeriod: 500ms"},
		{`{maxReplicas: 4, target: 20, behavior: {scaleUp: {policies: [{type: Pods, value: 0, period: 15s}]}}}`, "value 0"},
		{`{maxReplicas: 60000, target: 20}`, "pass port 65535"},
	} {
		p, err := Parse("x.yaml", []byte(strings.Replace(base, "AUTOSCALE", tc.autoscale, 1)), Options{})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.autoscale, err)
		case tc.want == "":
			a := p.Target.Services[0].Autoscale
			if a.MinReplicas != 1 || a.SyncPeriod != DefaultSyncPeriod || a.MetricWindow != DefaultMetricWindow || a.Balance != "least_request" || p.Target.Services[0].Replicas != 1 {
				t.Errorf("defaults %+v", a)
			}
		case err == nil || !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: got %v, want %q", tc.autoscale, err, tc.want)
		}
	}
}
