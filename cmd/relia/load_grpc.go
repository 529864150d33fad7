package main

import (
	"errors"
	"strings"

	"github.com/relia-dev/relia/load"
)

// grpcOneLiner fits relia load's one-liner to a grpc:// URL: the request
// is named by its method, and --proto and --import-path say where the
// method is defined.
func grpcOneLiner(sc *load.Scenario, target string, f *loadFlags) error {
	if !strings.HasPrefix(target, "grpc://") && !strings.HasPrefix(target, "grpcs://") {
		if len(f.protoFiles) > 0 || len(f.importPaths) > 0 {
			return errors.New("--proto and --import-path apply to a grpc:// URL")
		}
		return nil
	}
	if f.httpVersion != "" {
		return errors.New("--http: a gRPC call is HTTP/2 (grpc:// in cleartext, grpcs:// over TLS)")
	}
	sc.Spec.Requests[0].Name = "" // the method's name
	sc.Spec.GRPC = load.GRPCSpec{ProtoFiles: f.protoFiles, ImportPaths: f.importPaths}
	return nil
}
