package grpcstatus

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
)

// HTTPStatus is the HTTP status that google.rpc.Code documents for each
// gRPC code (OK 200, CANCELLED 499, INVALID_ARGUMENT 400, NOT_FOUND 404,
// RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501, UNAVAILABLE 503,
// DEADLINE_EXCEEDED 504, ...); codes beyond the specification are 500.
func HTTPStatus(code codes.Code) int {
	switch code {
	case codes.OK:
		return 200
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return 400
	case codes.DeadlineExceeded:
		return 504
	case codes.NotFound:
		return 404
	case codes.AlreadyExists, codes.Aborted:
		return 409
	case codes.PermissionDenied:
		return 403
	case codes.Unauthenticated:
		return 401
	case codes.ResourceExhausted:
		return 429
	case codes.Unimplemented:
		return 501
	case codes.Unavailable:
		return 503
	}
	return 500 // UNKNOWN, INTERNAL, DATA_LOSS and codes beyond the specification
}

// names are the codes' names as gRPC's specification writes them.
var names = [...]string{
	codes.OK: "OK", codes.Canceled: "CANCELLED", codes.Unknown: "UNKNOWN",
	codes.InvalidArgument: "INVALID_ARGUMENT", codes.DeadlineExceeded: "DEADLINE_EXCEEDED",
	codes.NotFound: "NOT_FOUND", codes.AlreadyExists: "ALREADY_EXISTS",
	codes.PermissionDenied: "PERMISSION_DENIED", codes.ResourceExhausted: "RESOURCE_EXHAUSTED",
	codes.FailedPrecondition: "FAILED_PRECONDITION", codes.Aborted: "ABORTED",
	codes.OutOfRange: "OUT_OF_RANGE", codes.Unimplemented: "UNIMPLEMENTED",
	codes.Internal: "INTERNAL", codes.Unavailable: "UNAVAILABLE", codes.DataLoss: "DATA_LOSS",
	codes.Unauthenticated: "UNAUTHENTICATED",
}

// Name is the code's name as gRPC's specification writes it:
// "UNAVAILABLE"; codes beyond the specification print as "CODE(17)".
func Name(c codes.Code) string {
	if int(c) < len(names) {
		return names[c]
	}
	return fmt.Sprintf("CODE(%d)", uint32(c))
}

// Parse reads a status code by its name as gRPC's specification writes
// it ("UNAVAILABLE", "DEADLINE_EXCEEDED"; any case; CANCELED too) or by
// its number (0 to 16).
func Parse(s string) (codes.Code, bool) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "CANCELED" {
		return codes.Canceled, true
	}
	for c, name := range names {
		if s == name || s == strconv.Itoa(c) {
			return codes.Code(c), true
		}
	}
	return 0, false
}

// EncodeMessage encodes a status message as gRPC's HTTP/2 mapping asks
// for grpc-message: printable ASCII but '%' as it is, every other byte
// as %XX.
func EncodeMessage(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// WriteTrailersOnly ends a call with a status and no message, as a server
// does with a Trailers-Only response: grpc-status and grpc-message
// (encoded by EncodeMessage, left out when empty) in the only headers,
// with grpc-retry-pushback-ms when pushback is set, which tells a
// client's retry policy when to try again (or, negative, not to).
func WriteTrailersOnly(w http.ResponseWriter, code codes.Code, msg string, pushback *int64) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(int(code)))
	if msg != "" {
		h.Set("Grpc-Message", EncodeMessage(msg))
	}
	if pushback != nil {
		h.Set("Grpc-Retry-Pushback-Ms", strconv.FormatInt(*pushback, 10))
	}
	w.WriteHeader(http.StatusOK)
}
