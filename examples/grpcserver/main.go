// Command grpcserver serves gRPC's interoperability test service
// (grpc.testing.TestService, with server reflection and the standard
// health service) for relia's gRPC examples: relia load grpc://, the
// gateway's gRPC routes, the fault proxy's gRPC faults. Its requests say
// what it does: UnaryCall answers response_size bytes, or the status in
// response_status; StreamingOutputCall streams one response per
// response_parameters entry; StreamingInputCall sums what it was sent;
// FullDuplexCall answers each message as it comes.
//
//	go run ./examples/grpcserver -addr 127.0.0.1:50051
//	relia load grpc://127.0.0.1:50051/grpc.testing.TestService/UnaryCall -d '{"response_size": 10}' --rate 100
//
// The service's definition, for clients that want a .proto file rather
// than reflection, is internal/grpcdemo/testservice.proto (-proto-out
// writes it where you like).
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/relia-dev/relia/internal/grpcdemo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "address to listen on")
	name := flag.String("name", "", "name sent back in every call's x-served-by header")
	protoOut := flag.String("proto-out", "", "write the service's .proto file here and go on serving")
	flag.Parse()
	if *protoOut != "" {
		if err := os.WriteFile(*protoOut, grpcdemo.Proto, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	srv, bound, err := grpcdemo.Serve(grpcdemo.Options{Name: *name}, *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("grpcserver: grpc.testing.TestService on %s", bound)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	srv.GracefulStop()
}
