// Package bench holds relia's comparison benchmarks and harnesses. It is a
// module of its own so that the peers it measures relia against (gobreaker,
// failsafe-go, ...) never enter relia's own module.
//
// Run them with `make bench`; docs/benchmarks.md holds the latest figures.
package bench
