package children

import (
	"sync"
	"sync/atomic"
)

// Map is a set of children by key. The zero Map is empty and ready; it is
// safe for concurrent use.
type Map[K comparable, V any] struct {
	m    sync.Map // K -> *entry[K, V]
	last atomic.Pointer[entry[K, V]]
}

type entry[K comparable, V any] struct {
	k K
	v V
}

// Get returns k's child, made by mk the first time k is asked for (by
// one of the callers that ask at once: every caller gets the same child).
func (m *Map[K, V]) Get(k K, mk func() V) V {
	if e := m.last.Load(); e != nil && e.k == k {
		return e.v
	}
	v, ok := m.m.Load(k)
	if !ok {
		v, _ = m.m.LoadOrStore(k, &entry[K, V]{k: k, v: mk()})
	}
	e := v.(*entry[K, V])
	m.last.Store(e)
	return e.v
}
