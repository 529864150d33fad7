package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// cpuTimes are one CPU's counters from /proc/stat, in clock ticks.
type cpuTimes struct{ busy, total uint64 }

// readCPUs returns the counters of every CPU by number; nil where
// /proc/stat cannot be read.
func readCPUs() map[int]cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	out := map[int]cpuTimes{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		n, err := strconv.Atoi(f[0][3:])
		if err != nil {
			continue
		}
		var t cpuTimes
		for i, v := range f[1:] {
			x, _ := strconv.ParseUint(v, 10, 64)
			// user nice system idle iowait irq softirq steal (guest time
			// is inside user already).
			if i >= 8 {
				break
			}
			t.total += x
			if i != 3 && i != 4 {
				t.busy += x
			}
		}
		out[n] = t
	}
	return out
}

// busy is the share of the time between two readings that cpu was busy.
func busy(before, after map[int]cpuTimes, cpu int) float64 {
	b, a := before[cpu], after[cpu]
	if a.total <= b.total {
		return 0
	}
	return float64(a.busy-b.busy) / float64(a.total-b.total)
}

// pinTree pins pid and the processes below it, every thread, to cpu.
func pinTree(pid int, cpu string) error {
	if out, err := exec.Command("taskset", "-a", "-c", "-p", cpu, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return fmt.Errorf("pinning pid %d to CPU %s: %w: %s", pid, cpu, err, out)
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, child := range strings.Fields(string(children)) {
			if c, err := strconv.Atoi(child); err == nil {
				if err := pinTree(c, cpu); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
