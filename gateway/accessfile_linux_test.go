//go:build linux

package gateway

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relia-dev/relia/clock"
)

// stepClock is a clock by which every write takes step.
type stepClock struct {
	clock.Clock
	step time.Duration
}

func (c stepClock) Since(time.Time) time.Duration { return c.step }

// The access log goes to a regular file by raw writes, in order and whole;
// a write that took long without its thread sleeping (it was preempted)
// keeps them raw. A pipe is written through os.File from the start: its
// reader may make a write wait.
func TestAccessFileWrites(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		step     time.Duration
		wantSlow bool
	}{
		{"fast", 10 * time.Microsecond, false},
		{"preempted", 3 * slowFileWrite / 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := os.OpenFile(filepath.Join(t.TempDir(), "access.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			w := newFileWriter(f, stepClock{Clock: clock.NewFake(time.Unix(0, 0)), step: tc.step})
			r, ok := w.(*rawFile)
			if !ok {
				t.Fatalf("a regular file is written by %T, want *rawFile", w)
			}
			var want []byte
			for i := range 3 {
				line := bytes.Repeat([]byte{'a' + byte(i)}, 40000+i)
				want = append(want, line...)
				if n, err := w.Write(line); n != len(line) || err != nil {
					t.Fatalf("write %d: %d, %v", i, n, err)
				}
				if r.slow != tc.wantSlow {
					t.Fatalf("after write %d slow = %v, want %v", i, r.slow, tc.wantSlow)
				}
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("the file holds %d bytes, want the %d written in order", len(got), len(want))
			}
		})
	}
	t.Run("pipe", func(t *testing.T) {
		t.Parallel()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		if w := newFileWriter(pw, nil); w != pw {
			t.Fatalf("a pipe is written by %T, want the *os.File", w)
		}
	})
}

// Only a write that slept and took long hands the writes to the runtime.
func TestSlowWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		took  time.Duration
		slept bool
		want  bool
	}{
		{50 * time.Microsecond, false, false},
		{50 * time.Microsecond, true, false},
		{slowFileWrite, true, false},
		{slowFileWrite + time.Microsecond, false, false},
		{slowFileWrite + time.Microsecond, true, true},
		{200 * time.Millisecond, true, true},
	} {
		if got := slowWrite(tc.took, tc.slept); got != tc.want {
			t.Errorf("slowWrite(%v, slept %v) = %v, want %v", tc.took, tc.slept, got, tc.want)
		}
	}
}

// A write to a closed file fails, as os.File's does, and writes nothing.
func TestAccessFileWriteError(t *testing.T) {
	t.Parallel()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "access.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := newFileWriter(f, nil)
	f.Close()
	if n, err := w.Write([]byte("line\n")); n != 0 || err == nil {
		t.Fatalf("a write to a closed file: %d, %v", n, err)
	}
}

// An access log handed over as an *os.File (relia ai serve's standard
// error) is written as the gateway's own file is: raw writes when it is a
// regular file, os.File's when it is a pipe. Through os.File every buffer
// written woke the runtime's monitor: relia ai serve, its standard error
// redirected to a file, made about 5 times as many of the monitor's
// sleeps and futex calls as with raw writes, at 4,460 streams a second.
// Every line still arrives, in order.
func TestAccessLogGivenAsAFile(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	be := newBackend(t, "svc")
	spec := `  upstreams: [{name: svc, targets: [{address: "` + be.addr() + `"}]}]
  routes: [{name: r, upstream: svc}]
`
	for _, tc := range []struct {
		name string
		file *os.File
		raw  bool
	}{
		{"regular file", f, true},
		{"pipe", pw, false},
	} {
		g, url := startGateway(t, spec, Options{AccessLog: tc.file})
		if _, raw := g.accessW.dst.(*rawFile); raw != tc.raw {
			t.Errorf("%s: written by %T, want raw %v", tc.name, g.accessW.dst, tc.raw)
		}
		if tc.raw {
			for i := range 3 {
				get(t, "GET", fmt.Sprintf("%s/line%d", url, i), nil)
			}
			if err := g.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != 3 {
				t.Fatalf("%d lines in the file, want 3:\n%s", len(lines), b)
			}
			for i, line := range lines {
				if !strings.Contains(line, fmt.Sprintf(`"path":"/line%d"`, i)) {
					t.Errorf("line %d: %s", i, line)
				}
			}
		}
	}
}
