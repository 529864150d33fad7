// Package children keeps a metric vector's children (the series for one
// set of label values) by a comparable key, so that a hot path resolves
// its labels once per distinct key and not once per event:
//
//	var byRoute children.Map[string, prometheus.Counter]
//	byRoute.Get(route, func() prometheus.Counter {
//		return requests.WithLabelValues(route)
//	}).Inc()
//
// Most events have the key of the event before (one route, one status),
// so the last child found is kept aside and compared first: a hit costs a
// comparison of the keys, where a map would hash them.
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
