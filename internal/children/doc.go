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
