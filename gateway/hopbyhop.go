package gateway

import (
	"bytes"

	"github.com/relia-dev/relia/internal/h1"
	"github.com/valyala/fasthttp"
)

// Fields a Connection header may name are hop-by-hop: a proxy removes them
// before forwarding (RFC 9110, section 7.6.1), in both directions.
// Otherwise a client could hand the target a header the target takes for
// one only a proxy in front would send, and a target could leak to
// clients what it meant for the gateway alone.

// connectionListed returns the field names that Connection values list,
// leaving out close and keep-alive (connection options, not fields), the
// message's framing (Content-Length, Transfer-Encoding, Host), which the
// gateway has parsed and writes itself, and Upgrade when keepUpgrade is
// set, which the upgrade path handles. It returns nil, without
// allocating, when there is nothing to remove.
func connectionListed(values [][]byte, keepUpgrade bool) []string {
	var names []string
	for _, v := range values {
		for tok := range h1.Tokens(v) {
			switch {
			case bytes.EqualFold(tok, []byte("close")),
				bytes.EqualFold(tok, []byte("keep-alive")),
				bytes.EqualFold(tok, []byte("content-length")),
				bytes.EqualFold(tok, []byte("transfer-encoding")),
				bytes.EqualFold(tok, []byte("host")),
				keepUpgrade && bytes.EqualFold(tok, []byte("upgrade")):
				continue
			}
			names = append(names, string(tok))
		}
	}
	return names
}

// dropRequestConnectionListed removes from a client's request the fields
// its Connection header names, and the header itself unless the request
// asks for an upgrade. It runs before the gateway adds fields of its own,
// so a client cannot have those removed.
func dropRequestConnectionListed(h *fasthttp.RequestHeader) {
	names := connectionListed(h.PeekAll(fasthttp.HeaderConnection), true)
	if names == nil {
		return
	}
	for _, name := range names {
		h.Del(name)
	}
	if !h.ConnectionUpgrade() {
		closing := h.ConnectionClose()
		h.Del(fasthttp.HeaderConnection)
		if closing {
			h.SetConnectionClose()
		}
	}
}

// dropResponseConnectionListed removes from a target's response the fields
// its Connection header names, and the header itself: the target's
// connection options are not the client's.
func dropResponseConnectionListed(h *fasthttp.ResponseHeader) {
	names := connectionListed(h.PeekAll(fasthttp.HeaderConnection), false)
	for _, name := range names {
		h.Del(name)
	}
	h.Del(fasthttp.HeaderConnection)
}
