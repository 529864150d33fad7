package fault

import (
	"hash/fnv"
	"math/rand/v2"
)

// streamKey derives the key of one toxic's random streams from the server's
// seed and the proxy's and toxic's names. Each connection and direction then
// gets its own PCG stream (see newStream), so a decision depends on the seed,
// the names and the connection's accept order, never on which goroutine ran
// first.
func streamKey(seed uint64, proxy, toxic string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(proxy))
	h.Write([]byte{0})
	h.Write([]byte(toxic))
	return splitmix(seed ^ h.Sum64())
}

// newStream returns the random stream of one toxic on one connection in
// one direction.
func newStream(key, conn uint64, dir Direction) *rand.Rand {
	return rand.New(rand.NewPCG(key, splitmix(conn<<1|uint64(dir))))
}

// splitmix is SplitMix64's finaliser: it spreads close inputs (seeds 1, 2,
// 3) over unrelated outputs.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
