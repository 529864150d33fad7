package grpcload_test

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/relia-dev/relia/grpcload"
	"github.com/relia-dev/relia/internal/grpcdemo"
)

func ExampleInvoker_Invoke() {
	srv, addr, err := grpcdemo.Serve(grpcdemo.Options{}, "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer srv.Stop()
	conn, _ := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()

	ctx := context.Background()
	schema, err := grpcload.Reflect(ctx, conn)
	if err != nil {
		panic(err)
	}
	md, _ := schema.Method("grpc.testing.TestService/StreamingOutputCall")
	call, err := grpcload.NewCall(md, `{"response_parameters": [{"size": 10}, {"size": 20}]}`)
	if err != nil {
		panic(err)
	}
	r := grpcload.NewInvoker(conn).Invoke(ctx, call)
	fmt.Println(call.Kind, grpcload.CodeName(r.Code), r.Received, grpcload.Class(r.Code, r.Err, nil))
	// Output: server streaming OK 2 ok
}
