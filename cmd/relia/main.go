// Command relia is reliability engineering in one binary: load, faults,
// a resilient gateway, SLOs and the workflow that ties them together.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
