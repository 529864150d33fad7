// Package grpcload makes gRPC calls for load tests: any method of any
// service, from .proto files (ParseProtoFiles) or from the server's own
// reflection service (Reflect), with request messages written as
// protobuf JSON and encoded once, metadata, a deadline per call, and all
// four kinds of call (unary, server streaming, client streaming,
// bidirectional). A call's end is its status code; Class maps each code
// to the outcome classes every part of relia shares, and HTTPStatus to
// the HTTP status google.rpc.Code documents for it.
//
//	schema, _ := grpcload.Reflect(ctx, conn)
//	md, _ := schema.Method("grpc.testing.TestService/UnaryCall")
//	call, _ := grpcload.NewCall(md, `{"response_size": 10}`)
//	call.Timeout = time.Second
//	r := grpcload.NewInvoker(conn).Invoke(ctx, call)
//	class := grpcload.Class(r.Code, r.Err, nil) // outcome.ClassOK, ClassTimeout, ...
//
// Messages go out and come back in the wire format through a codec of
// the package's own: a call neither builds nor parses a message, so the
// generator measures the service rather than its own encoding.
package grpcload
