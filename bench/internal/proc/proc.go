// Package proc reads what the benchmark harnesses measure about the
// processes they start: CPU time from /proc.
//
//	before := proc.CPUTime(pid)
//	// ... run wrk ...
//	perRequest := (proc.CPUTime(pid) - before) / time.Duration(requests)
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// CPUTime returns the user and system CPU time used so far by pid and the
// processes below it (nginx's workers are children of its master), from
// /proc (clock ticks of 10 ms); 0 when pid is 0 or unreadable. A child
// that has exited is no longer counted, so measure across a window in
// which the process tree does not change.
func CPUTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	total := ownCPUTime(pid)
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		for _, child := range strings.Fields(string(children)) {
			if c, err := strconv.Atoi(child); err == nil {
				total += CPUTime(c)
			}
		}
	}
	return total
}

func ownCPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields follow the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// CPUTimes returns how long each CPU has been busy, and in all, since
// boot, from /proc/stat (clock ticks of 10 ms): across a run, the busy
// share of the difference says which CPU saturated.
func CPUTimes() (busy, total []time.Duration) {
	for _, row := range cpuRows() {
		var all, idle int64
		for i, n := range row {
			if i >= 8 { // guest time is counted in user time already
				break
			}
			all += n
			if i == 3 || i == 4 { // idle, iowait
				idle += n
			}
		}
		busy = append(busy, ticks(all-idle))
		total = append(total, ticks(all))
	}
	return busy, total
}

// StealTimes returns how long the hypervisor has kept each CPU of this
// virtual machine from running since boot (the steal column of
// /proc/stat, in clock ticks of 10 ms): time in which a task on that CPU
// was ready and waited for the host, not for anything on the machine.
func StealTimes() []time.Duration {
	var steal []time.Duration
	for _, row := range cpuRows() {
		if len(row) > 7 {
			steal = append(steal, ticks(row[7]))
		}
	}
	return steal
}

// cpuRows returns each CPU's row of /proc/stat (user, nice, system,
// idle, iowait, irq, softirq, steal, guest, ...), in clock ticks.
func cpuRows() [][]int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil
	}
	var rows [][]int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		row := make([]int64, len(f)-1)
		for i, v := range f[1:] {
			row[i], _ = strconv.ParseInt(v, 10, 64)
		}
		rows = append(rows, row)
	}
	return rows
}

// ticks is a count of /proc/stat's clock ticks (USER_HZ, 100 a second)
// as a duration.
func ticks(n int64) time.Duration { return time.Duration(n) * 10 * time.Millisecond }
