// Package harness holds what relia's benchmark harnesses share besides
// /proc readings (bench/internal/proc): the relia binary they measure, a
// free loopback port for a peer to listen on, a wait until it does, and
// the median their tables print.
//
//	port := harness.FreePort()
//	// start a server on 127.0.0.1:port ...
//	if err := harness.WaitPort(port, 10*time.Second); err != nil {
//		return err
//	}
//	fmt.Println(harness.Median([]float64{3, 1, 2})) // 2
package harness

import (
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"
)

// FreePort returns a loopback TCP port nothing listens on at the moment of
// the call. It panics when the kernel gives none: a harness cannot go on.
func FreePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WaitPort waits up to within for something to accept connections on the
// loopback port.
func WaitPort(port int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d after %s", port, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Median is the middle of the values, the upper of the two middle ones
// for an even count (so that it is always a value that was measured), and
// 0 for none.
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// MedianInterval is a distribution-free 95% confidence interval for the
// median of the population the values were drawn from: the k-th smallest
// and k-th largest value, for the largest k at which fewer than k of n
// values fall below the median with probability at most 2.5% (the
// binomial sign test). With 30 values it is the 10th and the 21st. ok is
// false when there are too few values for any interval (fewer than 6).
func MedianInterval(v []float64) (lo, hi float64, ok bool) {
	n := len(v)
	// below is P(X < k) for X ~ Binomial(n, 1/2), k counted up from 0.
	k, below, term := 0, 0.0, math.Pow(0.5, float64(n))
	for {
		if below+term > 0.025 {
			break
		}
		below += term
		k++
		term *= float64(n-k+1) / float64(k)
	}
	if k == 0 {
		return 0, 0, false
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[k-1], s[n-k], true
}

// Relia returns the relia binary a harness measures: given, when a flag
// named one (an earlier build, for a before and after), or one built from
// this tree into dir.
func Relia(dir, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	relia := filepath.Join(dir, "relia")
	build := exec.Command("go", "build", "-o", relia, "./cmd/relia")
	build.Dir = ".." // the main module: bench/go.mod holds only the peers' dependencies
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("building relia: %w", err)
	}
	return relia, nil
}
