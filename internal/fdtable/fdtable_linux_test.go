package fdtable

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGrowSizesTheTable: after Grow the process's table holds the
// descriptors asked for (the kernel's FDSize in /proc/self/status), and
// no descriptor is left open.
func TestGrowSizesTheTable(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	want := int(min(lim.Cur, 4096))
	open := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := open()
	got, err := Grow(want)
	if err != nil || got != want {
		t.Fatalf("Grow(%d) = %d, %v", want, got, err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	size := -1
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "FDSize:"); ok {
			size, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if size < want {
		t.Errorf("FDSize %d after Grow(%d)", size, want)
	}
	if after := open(); after != before {
		t.Errorf("%d descriptors open after Grow, %d before", after, before)
	}
}
