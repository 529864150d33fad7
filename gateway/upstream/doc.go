// Package upstream is the gateway's HTTP/1.1 client to its targets:
// connections kept alive per target and bounded in number, requests
// written and responses read with relia's own codec (internal/h1), bodies
// passed on as they arrive in both directions, exchanges aborted when
// their context ends.
//
//	t := upstream.New(upstream.Settings{Addr: "10.0.0.7:8080", MaxConns: 512, DialTimeout: time.Second})
//	req := upstream.Request{Method: []byte("GET"), Target: []byte("/items/1"), Host: []byte("shop")}
//	var resp upstream.Response
//	if err := t.Do(ctx, &req, &resp, deadline); err != nil { ... }
//	defer resp.Release() // keeps the connection for the next request once the body is read
//	for {
//		piece, err := resp.Body.Next() // slices of the connection's buffer
//		...
//	}
//
// A response's body is read from the connection it came on, which the
// Response holds until Release; a Target has no goroutine of its own.
package upstream
