package grpcload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Schema holds the descriptors of the services a test calls, from .proto
// files (ParseProtoFiles) or from the server itself (Reflect).
type Schema struct {
	files *protoregistry.Files
	// source says where the descriptors came from, for errors.
	source string
}

// ParseProtoFiles compiles .proto files into a Schema. importPaths are
// the directories imports are resolved against (the files' own directory
// when none are given); the well-known types (google/protobuf/*.proto)
// are always available. Syntax errors name file:line:col.
func ParseProtoFiles(ctx context.Context, importPaths []string, files ...string) (*Schema, error) {
	if len(files) == 0 {
		return nil, errors.New("parsing proto files: no file given")
	}
	c := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: importPaths}),
		SourceInfoMode: protocompile.SourceInfoNone,
	}
	compiled, err := c.Compile(ctx, files...)
	if err != nil {
		return nil, fmt.Errorf("parsing proto files: %w", err)
	}
	reg := &protoregistry.Files{}
	var add func(fd protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		if _, err := reg.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := add(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return reg.RegisterFile(fd)
	}
	for _, fd := range compiled {
		if err := add(fd); err != nil {
			return nil, fmt.Errorf("parsing proto files: %w", err)
		}
	}
	return &Schema{files: reg, source: "proto files " + strings.Join(files, ", ")}, nil
}

// Reflect asks the server for its services' descriptors through the
// standard server reflection service (grpc.reflection.v1, or v1alpha for
// older servers), following every file's imports.
func Reflect(ctx context.Context, conn grpc.ClientConnInterface) (*Schema, error) {
	fds, err := reflectFiles(ctx, conn, reflectV1)
	if status.Code(err) == codes.Unimplemented {
		fds, err = reflectFiles(ctx, conn, reflectV1alpha)
	}
	if err != nil {
		return nil, fmt.Errorf("asking the server for its services (server reflection): %w", err)
	}
	reg, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: fds})
	if err != nil {
		return nil, fmt.Errorf("reading the server's descriptors: %w", err)
	}
	return &Schema{files: reg, source: "server reflection"}, nil
}

// The reflection service's method in both versions. Their messages are
// the same on the wire, so v1's types serve both.
const (
	reflectV1      = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	reflectV1alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
)

// reflectStream is one reflection stream: a request asked, its response
// read.
type reflectStream struct{ st grpc.ClientStream }

func (s reflectStream) ask(req *rpb.ServerReflectionRequest) (*rpb.ServerReflectionResponse, error) {
	if err := s.st.SendMsg(req); err != nil {
		if errors.Is(err, io.EOF) { // the stream ended: its status is on the receiving side
			if rerr := s.st.RecvMsg(&rpb.ServerReflectionResponse{}); rerr != nil {
				return nil, rerr
			}
		}
		return nil, err
	}
	resp := &rpb.ServerReflectionResponse{}
	if err := s.st.RecvMsg(resp); err != nil {
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
	}
	return resp, nil
}

// files returns the serialised descriptors of the file that defines
// symbol, or of the file named name, and those of its imports the server
// chooses to send.
func (s reflectStream) files(symbol, name string) ([][]byte, error) {
	req := &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: symbol}}
	if name != "" {
		req.MessageRequest = &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: name}
	}
	resp, err := s.ask(req)
	if err != nil {
		return nil, err
	}
	return resp.GetFileDescriptorResponse().GetFileDescriptorProto(), nil
}

// reflectFiles lists the services and fetches the files that define them
// and everything they import.
func reflectFiles(ctx context.Context, conn grpc.ClientConnInterface, method string) ([]*descriptorpb.FileDescriptorProto, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return nil, err
	}
	s := reflectStream{st: st}
	defer func() { _ = st.CloseSend() }()
	list, err := s.ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
	if err != nil {
		return nil, err
	}
	seen := map[string]*descriptorpb.FileDescriptorProto{}
	var order []string
	addAll := func(raw [][]byte) error {
		for _, b := range raw {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("decoding a file descriptor: %w", err)
			}
			if _, ok := seen[fd.GetName()]; !ok {
				seen[fd.GetName()] = fd
				order = append(order, fd.GetName())
			}
		}
		return nil
	}
	for _, svc := range list.GetListServicesResponse().GetService() {
		name := svc.GetName()
		if strings.HasPrefix(name, "grpc.reflection.") {
			continue
		}
		raw, err := s.files(name, "")
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		if err := addAll(raw); err != nil {
			return nil, err
		}
	}
	// Servers send the imports they think the client lacks; ask for any
	// that are still missing.
	for i := 0; i < len(order); i++ {
		for _, dep := range seen[order[i]].GetDependency() {
			if _, ok := seen[dep]; ok {
				continue
			}
			raw, err := s.files("", dep)
			if err != nil {
				return nil, fmt.Errorf("file %s: %w", dep, err)
			}
			if err := addAll(raw); err != nil {
				return nil, err
			}
		}
	}
	out := make([]*descriptorpb.FileDescriptorProto, 0, len(order))
	for _, n := range order {
		out = append(out, seen[n])
	}
	return out, nil
}

// Method finds a method by its full name, written as gRPC paths are
// ("pkg.Service/Method", with or without a leading slash) or as a
// protobuf full name ("pkg.Service.Method").
func (s *Schema) Method(name string) (protoreflect.MethodDescriptor, error) {
	n := strings.TrimPrefix(name, "/")
	svc, m, ok := strings.Cut(n, "/")
	if !ok {
		i := strings.LastIndexByte(n, '.')
		if i <= 0 {
			return nil, fmt.Errorf("method %q: want package.Service/Method", name)
		}
		svc, m = n[:i], n[i+1:]
	}
	d, err := s.files.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, fmt.Errorf("method %q: no service %s in %s (services: %s)", name, svc, s.source, strings.Join(s.Services(), ", "))
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("method %q: %s is not a service", name, svc)
	}
	md := sd.Methods().ByName(protoreflect.Name(m))
	if md == nil {
		var names []string
		for i := range sd.Methods().Len() {
			names = append(names, string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("method %q: service %s has no method %s (methods: %s)", name, svc, m, strings.Join(names, ", "))
	}
	return md, nil
}

// Services lists the full names of the schema's services, sorted.
func (s *Schema) Services() []string {
	var out []string
	s.files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			out = append(out, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	slices.Sort(out)
	return out
}
