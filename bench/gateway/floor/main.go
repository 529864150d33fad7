// Command floor is a reverse proxy with none of the gateway's features, for
// bench/gateway to measure what an HTTP engine costs by itself in Go on the
// benchmark's pinned cores. Two engines:
//
//   - fasthttp: fasthttp's server and HostClient, one request at a time
//     per connection (the gateway's engine, without the gateway);
//   - epoll: one thread, one epoll set, each client connection paired with
//     an upstream connection of its own, raw read(2)/write(2), nothing
//     parsed but the end of a GET request's head and a response's
//     Content-Length. It handles only what the benchmark sends.
//   - epoll+features: the epoll loop doing the per-request work of the
//     benchmark's gateway config (features.go says what);
//   - epoll+parsed: the same, with every message parsed by fasthttp,
//     edited as the gateway edits it and written back out: the gateway's
//     pipeline, which works on fasthttp's request and response types, on
//     an event loop;
//   - epoll+h1: the same with relia's in-place parser (internal/h1), what
//     an event-loop engine with a parser of its own would pay.
//
// None is a product: they are floors the gateway's figures are read
// against.
//
//	floor -engine epoll -listen 127.0.0.1:8081 -upstream 127.0.0.1:8080
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
)

func main() {
	engine := flag.String("engine", "epoll", "fasthttp, epoll, epoll+features, epoll+parsed or epoll+h1")
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:8080", "backend address")
	accessLog := flag.String("access-log", os.DevNull, "epoll+features: the access log file")
	flag.Parse()
	var err error
	switch *engine {
	case "fasthttp":
		err = serveFasthttp(*listen, *upstream)
	case "epoll", "epoll+features", "epoll+parsed", "epoll+h1":
		var l, u netip.AddrPort
		if l, err = netip.ParseAddrPort(*listen); err == nil {
			if u, err = netip.ParseAddrPort(*upstream); err == nil {
				var hooks messageHooks
				if *engine != "epoll" {
					if hooks, err = newFeatures(*accessLog, *engine == "epoll+parsed", *engine == "epoll+h1"); err != nil {
						break
					}
				}
				err = serveEpoll(l, u, hooks)
			}
		}
	default:
		err = fmt.Errorf("unknown engine %q (fasthttp, epoll, epoll+features, epoll+parsed or epoll+h1)", *engine)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}
