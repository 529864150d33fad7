// Package grpcstatus holds what relia's gRPC parts (grpcload, the
// gateway's gRPC routes, the fault proxy's HTTP/2 mode) share about a
// call's status: its name as gRPC's specification writes it, the HTTP
// status google.rpc.Code documents for it, and the Trailers-Only answer
// that ends a call with a status of relia's own.
//
//	c, ok := grpcstatus.Parse("resource_exhausted") // codes.ResourceExhausted, true
//	grpcstatus.Name(c)                               // "RESOURCE_EXHAUSTED"
//	grpcstatus.HTTPStatus(c)                         // 429
//	grpcstatus.WriteTrailersOnly(w, c, "shed", &pushbackMs)
package grpcstatus
