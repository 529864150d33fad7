package experiment

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// recordingReplica notes what process faults did to it.
type recordingReplica struct {
	mu    sync.Mutex
	calls []string
	done  chan string
}

func (r *recordingReplica) note(call string) error {
	r.mu.Lock()
	r.calls = append(r.calls, call)
	r.mu.Unlock()
	r.done <- call
	return nil
}

func (r *recordingReplica) kill() error    { return r.note("kill") }
func (r *recordingReplica) restart() error { return r.note("restart") }
func (r *recordingReplica) pause() error   { return r.note("pause") }
func (r *recordingReplica) resume() error  { return r.note("resume") }

// TestFaultScheduleOnAFakeClock drives two process faults through their
// schedule on a fake clock: each starts and ends at its offsets, and the
// one still active when the run ends early is rolled back with the run's
// reason.
func TestFaultScheduleOnAFakeClock(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	clk := clock.NewFake(start)
	a := &recordingReplica{done: make(chan string, 4)}
	b := &recordingReplica{done: make(chan string, 4)}
	p := &Plan{FaultLease: 15 * time.Second, Faults: []PlannedFault{
		{Name: "kill-a", Kind: FaultProcess, Target: "service/api", Start: time.Second, End: 3 * time.Second, Replica: 0,
			Process: &ProcessFault{Action: ActionKill, Service: "api"}},
		{Name: "pause-b", Kind: FaultProcess, Target: "service/api", Start: 2 * time.Second, End: 5 * time.Second, Replica: 1,
			Process: &ProcessFault{Action: ActionPause, Service: "api"}},
	}}
	var reasonMu sync.Mutex
	reason := EndStopped
	fr := (&faultRunner{plan: p, clock: clk, log: slog.New(slog.NewTextHandler(io.Discard, nil)), start: start,
		target: &system{replicas: map[string][]replicaControl{"api": {a, b}}},
		why: func() string {
			reasonMu.Lock()
			defer reasonMu.Unlock()
			return reason
		},
		failed: func(err error) { t.Errorf("a fault failed: %v", err) }}).init()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fr.runAll(ctx)
	}()
	expect := func(r *recordingReplica, call string) {
		t.Helper()
		if got := <-r.done; got != call {
			t.Fatalf("got %s, want %s", got, call)
		}
	}
	clk.BlockUntil(2) // both faults wait for their start
	clk.Advance(time.Second)
	expect(a, "kill")
	clk.BlockUntil(2) // kill-a's end, pause-b's start
	clk.Advance(time.Second)
	expect(b, "pause")
	clk.BlockUntil(2)
	clk.Advance(time.Second)
	expect(a, "restart")
	// kill-a records its end after the restart returns: the clock must
	// not move before it has, or the record says 3.5 s.
	for deadline := time.Now().Add(10 * time.Second); fr.snapshot()[0].End.IsZero(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("kill-a never recorded its end")
		}
	}
	clk.BlockUntil(1) // pause-b's end, at 5s
	clk.Advance(500 * time.Millisecond)
	reasonMu.Lock()
	reason = EndRolledBackAbort
	reasonMu.Unlock()
	cancel()
	expect(b, "resume")
	<-done

	recs := fr.snapshot()
	at := func(d time.Duration) time.Time { return start.Add(d) }
	want := []FaultRecord{
		{Name: "kill-a", Kind: FaultProcess, Target: "service/api", Replica: 0, Start: at(time.Second), End: at(3 * time.Second), EndReason: EndStopped},
		{Name: "pause-b", Kind: FaultProcess, Target: "service/api", Replica: 1, Start: at(2 * time.Second), End: at(3500 * time.Millisecond), EndReason: EndRolledBackAbort},
	}
	if !slices.EqualFunc(recs, want, func(x, y FaultRecord) bool {
		return x.Name == y.Name && x.Replica == y.Replica && x.Start.Equal(y.Start) && x.End.Equal(y.End) && x.EndReason == y.EndReason && x.Error == ""
	}) {
		t.Errorf("records\n%+v\nwant\n%+v", recs, want)
	}
	if !slices.Equal(a.calls, []string{"kill", "restart"}) || !slices.Equal(b.calls, []string{"pause", "resume"}) {
		t.Errorf("replica a %v, b %v", a.calls, b.calls)
	}
}

// TestFaultNeverStartedWhenTheRunEndsFirst checks that a fault whose start
// the run does not reach is recorded as not started and never applied.
func TestFaultNeverStartedWhenTheRunEndsFirst(t *testing.T) {
	t.Parallel()
	start := time.Unix(1_700_000_000, 0)
	clk := clock.NewFake(start)
	a := &recordingReplica{done: make(chan string, 4)}
	p := &Plan{FaultLease: 15 * time.Second, Faults: []PlannedFault{{Name: "late", Kind: FaultProcess, Target: "service/api",
		Start: 10 * time.Second, End: 20 * time.Second, Process: &ProcessFault{Action: ActionKill, Service: "api"}}}}
	fr := (&faultRunner{plan: p, clock: clk, log: slog.New(slog.NewTextHandler(io.Discard, nil)), start: start,
		target: &system{replicas: map[string][]replicaControl{"api": {a}}},
		why:    func() string { return EndRolledBackSignal }, failed: func(err error) { t.Error(err) }}).init()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fr.runAll(ctx)
	}()
	clk.BlockUntil(1)
	clk.Advance(5 * time.Second)
	cancel()
	<-done
	if r := fr.snapshot()[0]; r.EndReason != EndNotStarted || !r.Start.IsZero() || len(a.calls) != 0 {
		t.Errorf("record %+v, calls %v: want never started", r, a.calls)
	}
}

// TestGatewayFaultCarriesEveryField: each field of an experiment's
// gateway fault reaches the route fault relia run adds, under the same
// name and with the same value; a field added to one and not passed on
// fails here.
func TestGatewayFaultCarriesEveryField(t *testing.T) {
	t.Parallel()
	var g GatewayFault
	gv := reflect.ValueOf(&g).Elem()
	for i := range gv.NumField() {
		fillNonZero(t, gv.Type().Field(i).Name, gv.Field(i))
	}
	rf := reflect.ValueOf(g.RouteFault("f", 42))
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if name == "Route" {
			continue
		}
		got := rf.FieldByName(name)
		if !got.IsValid() {
			t.Errorf("gateway.Fault has no field %s", name)
			continue
		}
		if !reflect.DeepEqual(got.Interface(), gv.Field(i).Interface()) {
			t.Errorf("%s: route fault has %v, experiment %v", name, got.Interface(), gv.Field(i).Interface())
		}
	}
	if f := g.RouteFault("f", 42); f.Name != "f" || f.Seed != 42 {
		t.Errorf("name and seed: %q %d", f.Name, f.Seed)
	}
}

// fillNonZero sets v to a value that is not its type's zero.
func fillNonZero(t *testing.T, name string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int64:
		v.SetInt(3)
	case reflect.Uint64:
		v.SetUint(3)
	case reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillNonZero(t, name, v.Elem())
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fillNonZero(t, name, v.Index(0))
	default:
		t.Fatalf("%s: no value for kind %s", name, v.Kind())
	}
}
