package gateway

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestExchangeStartsClean: an exchange used for one request and cleared
// starts the next with none of its state (only g set) and its buffers
// empty; and the fields an exchange keeps from one request to the next
// are only those renew readies, so that a field added beside them, not in
// exchangeState, fails here rather than leaking into the next request.
func TestExchangeStartsClean(t *testing.T) {
	kept := []string{"exchangeState", "req", "resp", "rid", "path", "buf", "xff", "utarget", "ckey", "line", "stamp", "tt", "steps", "taps"}
	var fields []string
	for f := range reflect.TypeFor[exchange]().Fields() {
		fields = append(fields, f.Name)
	}
	if !slices.Equal(fields, kept) {
		t.Errorf("exchange's own fields are %v, want %v: a request's state goes in exchangeState, which clear zeroes", fields, kept)
	}

	g := &Gateway{}
	x := newExchange(g)
	x.status, x.attempts, x.start, x.client, x.reason = 502, 2, time.Now(), netip.MustParseAddr("192.0.2.1"), "upstream_failed"
	x.traceID[0], x.sampled, x.keptPath = 1, 1, true
	x.rid = append(x.rid, "abc"...)
	x.path = append(x.path, "/a"...)
	x.xff = append(x.xff, "192.0.2.1"...)
	x.line = append(x.line, "{}"...)
	x.req.method = []byte("GET")
	x.resp.status = 502
	x.clear()
	g2 := &Gateway{}
	x = x.renew(g2)
	want := exchangeState{g: g2}
	want.ureq.Fields = x.ureq.Fields // the request's field array, emptied
	if !reflect.DeepEqual(x.exchangeState, want) || len(x.ureq.Fields) != 0 {
		t.Errorf("a renewed exchange kept request state: %+v", x.exchangeState)
	}
	if len(x.rid)+len(x.path)+len(x.xff)+len(x.line)+len(x.buf)+len(x.ckey)+len(x.utarget) != 0 || x.req.method != nil || x.resp.status != 0 {
		t.Errorf("a renewed exchange kept a buffer's or a message's bytes")
	}
}
