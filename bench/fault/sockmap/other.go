//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "sockmap: kernel forwarding through a BPF sockhash needs Linux")
	os.Exit(1)
}
