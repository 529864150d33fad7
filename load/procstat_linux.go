package load

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readProcStat reads the process's CPU time (user and system, as
// getrusage and /proc/self/stat report it) and the host's CPU pressure:
// the total time some runnable task waited for a CPU, from
// /proc/pressure/cpu ("some ... total=µs"). Kernels without pressure
// stall information (older than 4.20, or booted with psi=0) leave
// hasStall false.
func readProcStat() procStat {
	st := procStat{at: time.Now()}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		st.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		st.hasCPU = true
	}
	st.stall, st.hasStall = readPressure("/proc/pressure/cpu")
	return st
}

// readPressure reads the "some" line's total of a pressure file.
func readPressure(path string) (time.Duration, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "some" {
			continue
		}
		for _, kv := range fields[1:] {
			if v, ok := strings.CutPrefix(kv, "total="); ok {
				us, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return 0, false
				}
				return time.Duration(us) * time.Microsecond, true
			}
		}
	}
	return 0, false
}
