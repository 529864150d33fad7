package children

import (
	"sync"
	"sync/atomic"
)

// Map is a set of children by key. The zero Map is empty and ready; it is
// safe for concurrent use.
type Map[K comparable, V any] struct {
	// A map of K under a read lock, not a sync.Map: a sync.Map takes its
	// keys as interfaces, and a key that is not a pointer (a string, a
	// struct of label values) would be copied to the heap on every
	// lookup the last child does not answer.
	mu   sync.RWMutex
	m    map[K]*entry[K, V]
	last atomic.Pointer[entry[K, V]]
}

type entry[K comparable, V any] struct {
	k K
	v V
}

// Get returns k's child, made by mk the first time k is asked for (once:
// callers that ask at once wait for it and get the same child).
func (m *Map[K, V]) Get(k K, mk func() V) V {
	if e := m.last.Load(); e != nil && e.k == k {
		return e.v
	}
	m.mu.RLock()
	e := m.m[k]
	m.mu.RUnlock()
	if e == nil {
		m.mu.Lock()
		if e = m.m[k]; e == nil {
			if m.m == nil {
				m.m = map[K]*entry[K, V]{}
			}
			e = &entry[K, V]{k: k, v: mk()}
			m.m[k] = e
		}
		m.mu.Unlock()
	}
	m.last.Store(e)
	return e.v
}
