//go:build !linux

package fdtable

// Gateway is how many descriptors a gateway's table is grown to hold.
const Gateway = 1 << 16

// Grow does nothing where the table's growth is not known to stall.
func Grow(n int) (int, error) { return 0, nil }
