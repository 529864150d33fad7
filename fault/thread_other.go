//go:build !linux

package fault

// threadID is 0 where threads have no id that a test could look up.
func threadID() int { return 0 }
