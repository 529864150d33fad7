//go:build !unix

package main

import "os"

// progressSignals: none outside Unix.
var progressSignals []os.Signal
