package grpcload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Kind is how a method streams.
type Kind uint8

// The four kinds of gRPC call.
const (
	Unary Kind = iota
	ServerStream
	ClientStream
	BidiStream
)

// String names the kind as gRPC's documentation does.
func (k Kind) String() string {
	switch k {
	case Unary:
		return "unary"
	case ServerStream:
		return "server streaming"
	case ClientStream:
		return "client streaming"
	case BidiStream:
		return "bidirectional streaming"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// KindOf tells a method's kind from its descriptor.
func KindOf(md protoreflect.MethodDescriptor) Kind {
	switch {
	case md.IsStreamingClient() && md.IsStreamingServer():
		return BidiStream
	case md.IsStreamingClient():
		return ClientStream
	case md.IsStreamingServer():
		return ServerStream
	}
	return Unary
}

// Path is the method's gRPC path, "/package.Service/Method".
func Path(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

// EncodeJSON encodes a message given as protobuf JSON ("{"name": "x"}")
// in the binary wire format, checked against the message's descriptor:
// an unknown field or a wrong type is an error that names it.
func EncodeJSON(md protoreflect.MessageDescriptor, json []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	if len(json) > 0 {
		if err := protojson.Unmarshal(json, m); err != nil {
			return nil, fmt.Errorf("message %s: %w", md.FullName(), err)
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", md.FullName(), err)
	}
	return b, nil
}

// DecodeJSON writes a message in the wire format as protobuf JSON, for
// checks and for showing a response.
func DecodeJSON(md protoreflect.MessageDescriptor, b []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("message %s: %w", md.FullName(), err)
	}
	return protojson.Marshal(m)
}

// Call is one method call made ready: its path and kind, the metadata
// and deadline of every call, and the request messages already encoded,
// so that making a call encodes nothing.
type Call struct {
	// Method is the method called.
	Method protoreflect.MethodDescriptor
	// Kind is the method's kind.
	Kind Kind
	// Metadata is sent with every call (gRPC's request headers).
	Metadata metadata.MD
	// Timeout is each call's deadline, sent to the server as grpc-timeout;
	// 0 means none.
	Timeout time.Duration
	// Messages are the request messages in the wire format: the one
	// request of a unary or server-streaming call (the first is used),
	// the stream of a client-streaming or bidirectional call (in order).
	Messages [][]byte
	// KeepLast keeps the last response message in Reply.Last, for checks.
	KeepLast bool

	path string
	desc *grpc.StreamDesc
	opts []grpc.CallOption
}

// NewCall makes a call of md from request messages in protobuf JSON.
func NewCall(md protoreflect.MethodDescriptor, messages ...string) (*Call, error) {
	c := &Call{Method: md}
	for i, m := range messages {
		b, err := EncodeJSON(md.Input(), []byte(m))
		if err != nil {
			return nil, fmt.Errorf("request message %d: %w", i+1, err)
		}
		c.Messages = append(c.Messages, b)
	}
	if err := c.Prepare(); err != nil {
		return nil, err
	}
	return c, nil
}

// Prepare finishes a Call whose fields were set directly.
func (c *Call) Prepare() error {
	if c.Method == nil {
		return errors.New("grpc call: no method")
	}
	c.Kind = KindOf(c.Method)
	c.path = Path(c.Method)
	c.desc = &grpc.StreamDesc{StreamName: string(c.Method.Name()),
		ServerStreams: c.Method.IsStreamingServer(), ClientStreams: c.Method.IsStreamingClient()}
	c.opts = []grpc.CallOption{grpc.ForceCodecV2(rawCodec{})}
	if len(c.Messages) == 0 {
		// A call with no message given sends the empty message, as a
		// unary call must send one.
		c.Messages = [][]byte{nil}
	}
	if c.Timeout < 0 {
		return fmt.Errorf("grpc call %s: timeout %s is negative", c.path, c.Timeout)
	}
	return nil
}

// Path is the call's gRPC path.
func (c *Call) Path() string { return c.path }

// Reply is what one call produced.
type Reply struct {
	// Code is the call's status code; codes.OK when it succeeded.
	Code codes.Code
	// Err is the call's error (a gRPC status error), nil when Code is OK.
	Err error
	// BytesOut and BytesIn count the messages sent and received with
	// their five-byte gRPC frame prefix; headers and trailers are not
	// counted (HPACK compresses them, so their size on the wire is not
	// known to the caller).
	BytesOut, BytesIn int64
	// Received is the number of response messages.
	Received int
	// Last is the last response message (with Call.KeepLast), in the wire
	// format; it is reused by the next call on the same Invoker.
	Last []byte
}

// Invoker makes calls. It is not safe for concurrent use: give each
// goroutine its own; they may share connections.
type Invoker struct {
	// Conn is the connection the next call goes through; a caller that
	// spreads calls over several connections sets it before each call.
	Conn grpc.ClientConnInterface
	in   rawReply
}

// NewInvoker returns an Invoker that calls through conn.
func NewInvoker(conn grpc.ClientConnInterface) *Invoker { return &Invoker{Conn: conn} }

// Invoke makes the call with its own messages and metadata.
func (v *Invoker) Invoke(ctx context.Context, c *Call) Reply {
	return v.InvokeWith(ctx, c, c.Messages, c.Metadata)
}

// InvokeWith makes the call with the messages and metadata given
// (rendered per call from templates, say) instead of the call's own.
func (v *Invoker) InvokeWith(ctx context.Context, c *Call, msgs [][]byte, md metadata.MD) Reply {
	if len(md) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	v.in = rawReply{keep: c.KeepLast, body: v.in.body[:0]}
	var r Reply
	var err error
	if c.Kind == Unary {
		out := rawMessage(msgs[0])
		r.BytesOut = frameLen(len(out))
		err = v.Conn.Invoke(ctx, c.path, &out, &v.in, c.opts...)
		if err == nil {
			r.BytesIn, r.Received = v.in.bytes, 1
		}
	} else {
		err = v.stream(ctx, c, msgs, &r)
	}
	r.Code = status.Code(err)
	if r.Code != codes.OK {
		r.Err = err
	}
	if c.KeepLast {
		r.Last = v.in.body
	}
	return r
}

// stream makes a streaming call: it sends the messages (one for a
// server-streaming call), closes its side and reads every response until
// the server ends the call. A bidirectional call reads while it sends, so
// a server that answers each message as it comes is never blocked.
func (v *Invoker) stream(ctx context.Context, c *Call, msgs [][]byte, r *Reply) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := v.Conn.NewStream(ctx, c.desc, c.path, c.opts...)
	if err != nil {
		return err
	}
	if c.Kind == ServerStream {
		msgs = msgs[:1]
	}
	var recvDone chan error
	if c.Kind == BidiStream {
		recvDone = make(chan error, 1)
		go func() { recvDone <- v.recvAll(st, r) }() // ends with the stream
	}
	var sendErr error
	for _, m := range msgs {
		out := rawMessage(m)
		if sendErr = st.SendMsg(&out); sendErr != nil {
			break
		}
		r.BytesOut += frameLen(len(m))
	}
	if sendErr == nil {
		sendErr = st.CloseSend()
	}
	if recvDone != nil {
		err = <-recvDone
	} else {
		err = v.recvAll(st, r)
	}
	if err == nil && sendErr != nil && !errors.Is(sendErr, io.EOF) {
		return sendErr
	}
	return err
}

// recvAll reads responses until the call ends; it returns nil when the
// call ended with OK.
func (v *Invoker) recvAll(st grpc.ClientStream, r *Reply) error {
	for {
		v.in.bytes = 0
		err := st.RecvMsg(&v.in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r.BytesIn += v.in.bytes
		r.Received++
	}
}

// frameLen is a message's length on the wire with gRPC's length prefix.
func frameLen(n int) int64 { return int64(n) + 5 }

// rawMessage is a message already in the wire format.
type rawMessage []byte

// rawReply counts a response message's bytes and keeps them when asked.
type rawReply struct {
	bytes int64
	keep  bool
	body  []byte
}

// rawCodec sends rawMessages as they are and reads responses into
// rawReplies without decoding them: a load test measures the service, so
// it neither builds nor parses messages per call.
type rawCodec struct{}

// Marshal returns the message's bytes.
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("grpcload codec: cannot send %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
}

// Unmarshal counts the message and copies it when the reply keeps it.
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*rawReply)
	if !ok {
		return fmt.Errorf("grpcload codec: cannot read into %T", v)
	}
	n := data.Len()
	r.bytes = frameLen(n)
	if r.keep {
		r.body = r.body[:0]
		for _, b := range data {
			r.body = append(r.body, b.ReadOnlyData()...)
		}
	}
	return nil
}

// Name is the content subtype: the messages are protobuf's.
func (rawCodec) Name() string { return "proto" }
