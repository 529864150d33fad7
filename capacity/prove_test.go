package capacity

import (
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/experiment"
	"github.com/relia-dev/relia/slo"
)

// freePorts finds n consecutive free loopback ports.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 20; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := base+n <= 65535
		for i := 1; ok && i < n; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Skipf("no %d consecutive free ports", n)
	return 0
}

// provedExperiment scales replicas of the test binary's worker-pool
// service (50 req/s each) through a spike from 30 to 150 req/s: two
// replicas hold the baseline; the spike needs three or more, and new ones
// take 8 s to join. The gateway gives up on a request after 1 s, so the
// replicas' queues hold at most a second of work and the breach ends
// soon after the new replicas join, however the gateway spreads the
// requests that were already queued.
const provedExperiment = `kind: Experiment
version: relia/v1
metadata: {name: prove}
spec:
  seed: 7
  target:
    services:
      - name: api
        command: [BINARY]
        env: {ENVKEY: "1"}
        port: PORT
        autoscale: {minReplicas: 2, maxReplicas: 8, target: 20, startupDelay: 8s, syncPeriod: 3s, metricWindow: 3s, timeout: 1s}
  slos: [{id: api-latency}]
  phases:
    - {name: baseline, duration: 6s, load: {rate: 30, maxInFlight: 5000}}
    - {name: spike, duration: 18s, load: {rate: 150, maxInFlight: 5000}}
    - {name: after, duration: 6s, load: {rate: 30, maxInFlight: 5000}}
---
kind: SLO
version: relia/v1
metadata: {name: latency}
spec:
  service: api
  objective: 95%
  sli: {latency: {threshold: 250ms}}
`

func TestSimulationPredictsTheProvedBreach(t *testing.T) {
	// Not parallel: the run's replicas should have the machine's cores
	// to themselves as much as a test can.

	// the model of one replica, measured
	srv := workerPool(t, 20*time.Millisecond)
	m, err := Measure(context.Background(), getScenario(srv.URL+"/"), srv.URL, MeasureOptions{Concurrency: []int{1, 2, 3, 4}, StepDuration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if m.Fit == nil {
		t.Fatalf("no fit: %s", m.FitError)
	}
	replica := Replica{Model: m.Fit.Model}

	port := freePorts(t, 8)
	dir := t.TempDir()
	path := filepath.Join(dir, "prove.yaml")
	yaml := strings.NewReplacer("BINARY", os.Args[0], "ENVKEY", serviceEnv, "PORT", strconv.Itoa(port)).Replace(provedExperiment)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := experiment.ReadFile(path, experiment.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	res, err := experiment.Run(context.Background(), plan, experiment.RunOptions{OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	rec, j, err := ReadProved(out, "api")
	if err != nil {
		t.Fatal(err)
	}
	slos, err := slo.Parse("slo.yaml", []byte(yaml[strings.Index(yaml, "kind: SLO"):]))
	if err != nil {
		t.Fatal(err)
	}
	proved, err := Prove(rec, j.Start, j.End, slos)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ProvedScenario(rec, plan, j.Start, replica, slos)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := Simulate(sc)
	if err != nil {
		t.Fatal(err)
	}
	measured, predicted := proved.TotalBreach(), sim.TotalBreach()
	for i, ps := range proved.Seconds {
		line := ""
		if i < len(sim.Seconds) {
			ss := sim.Seconds[i]
			line = " | sim " + strconv.Itoa(int(ss.Replicas)) + "/" + strconv.Itoa(int(ss.Ready)) + " " + ss.Latency.String() + " " + strconv.FormatFloat(ss.SLIs["api-latency"], 'f', 3, 64)
		}
		t.Logf("%2ds proved %d/%d req %d p99 %s sli %.3f%s", i, ps.Replicas, ps.Ready, ps.Requests, ps.P99, ps.SLIs["api-latency"], line)
	}
	t.Logf("measured breach %s, predicted %s; run exit %d; events %+v; simulated %+v", measured, predicted, res.ExitCode, rec.Events, sim.Events)
	if len(rec.Events) == 0 || rec.Events[0].To <= 2 {
		t.Fatalf("the autoscaler did not scale up: %+v", rec.Events)
	}
	if measured < 5*time.Second {
		t.Fatalf("the proved run breached for %s only: the spike was meant to breach", measured)
	}
	// the bar: within 25% of the measured breach
	if math.Abs(float64(predicted-measured)) > 0.25*float64(measured) {
		t.Errorf("predicted breach %s is not within 25%% of the measured %s", predicted, measured)
	}
	if peak := maxReplicas(proved); peak < 3 || int32(peak) > sim.PeakReplicas+2 || int32(peak) < sim.PeakReplicas-2 {
		t.Errorf("replicas: proved peak %d, simulated %d", peak, sim.PeakReplicas)
	}
}

func maxReplicas(p *Proved) int {
	n := 0
	for _, s := range p.Seconds {
		n = max(n, s.Replicas)
	}
	return n
}
