package experiment

import (
	"crypto/rand"
	"encoding/binary"
	"hash/fnv"
	"math/bits"
	mrand "math/rand/v2"
)

// Source is a deterministic stream of random numbers for one purpose of a
// run (which replica a fault kills, one phase's load jitter), derived from
// the run's seed and the purpose's name. Streams of different names are
// independent, so adding a fault to an experiment does not change the
// decisions made for the others, and the same seed replays every
// decision.
//
// The numbers are stable across Go versions: they come from math/rand/v2's
// PCG generator (a fixed algorithm, PCG-DXSM) through this type's own
// reductions, never through math/rand's helpers, whose algorithms may
// change.
type Source struct {
	pcg *mrand.PCG
}

// NewSource returns the stream named name of the run seeded with seed.
func NewSource(seed uint64, name string) *Source {
	h := nameHash(name)
	return &Source{pcg: mrand.NewPCG(splitmix(seed^h), splitmix(h+0x632be59bd9b4e019))}
}

// DeriveSeed returns the seed of the part of a run named name (one fault,
// one phase's load), for components that take a seed of their own: the
// first number of the stream of that name.
func DeriveSeed(seed uint64, name string) uint64 { return NewSource(seed, name).Uint64() }

// Uint64 returns the next 64 random bits.
func (s *Source) Uint64() uint64 { return s.pcg.Uint64() }

// IntN returns a number in [0, n); n must be positive. It uses Lemire's
// multiply-and-reject method, so every value is equally likely.
func (s *Source) IntN(n int) int {
	if n <= 0 {
		panic("experiment: Source.IntN: n must be positive")
	}
	bound := uint64(n)
	threshold := -bound % bound // 2^64 mod bound
	for {
		hi, lo := bits.Mul64(s.Uint64(), bound)
		if lo >= threshold {
			return int(hi)
		}
	}
}

// Float64 returns a number in [0, 1) with 53 random bits.
func (s *Source) Float64() float64 { return float64(s.Uint64()>>11) / (1 << 53) }

// RandomSeed returns a seed from the operating system's random source,
// for runs whose experiment names none; the run records it.
func RandomSeed() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return binary.LittleEndian.Uint64(b[:])
}

// nameHash is FNV-1a of name: fixed by its specification, so derived
// streams never change.
func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// splitmix is SplitMix64's finaliser: it spreads close inputs (seeds 1,
// 2, 3) over unrelated outputs.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
