package main

import "github.com/valyala/fasthttp"

// serveFasthttp proxies every request to upstream through one HostClient.
func serveFasthttp(listen, upstream string) error {
	client := &fasthttp.HostClient{Addr: upstream, MaxConns: 1024}
	return fasthttp.ListenAndServe(listen, func(ctx *fasthttp.RequestCtx) {
		if err := client.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusBadGateway)
		}
	})
}
