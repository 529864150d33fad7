package grpcload

import (
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/relia-dev/relia/internal/grpcstatus"
	"github.com/relia-dev/relia/outcome"
)

// Class names what became of a call, in the classes every part of relia
// shares, so that an SLO over gRPC calls reads like one over HTTP
// requests. expected are codes that answer the call as intended (a
// NOT_FOUND the test provokes on purpose): they count as ok. The rule,
// by status code:
//
//	OK                    ok
//	CANCELLED             canceled (the caller gave up: the run ended)
//	DEADLINE_EXCEEDED     timeout (the call's deadline passed)
//	UNAVAILABLE           refused, reset, tls or dns when the client's
//	                      transport failed (no server answered); status
//	                      when a server answered UNAVAILABLE (shedding load)
//	any other code        status (the server answered with an error)
//
// A code listed in expected is ok whatever the rule says.
func Class(code codes.Code, err error, expected []codes.Code) outcome.Class {
	if code == codes.OK || slices.Contains(expected, code) {
		return outcome.ClassOK
	}
	switch code {
	case codes.Canceled:
		return outcome.ClassCanceled
	case codes.DeadlineExceeded:
		return outcome.ClassTimeout
	case codes.Unavailable:
		return transportClass(err)
	}
	return outcome.ClassStatus
}

// transportClass tells a connection that failed from a server that
// answered UNAVAILABLE. grpc-go does not wrap the transport's error in
// the status it returns, only its text, so the text decides: the phrases
// are those of Go's network errors and of grpc-go's transport.
func transportClass(err error) outcome.Class {
	msg := status.Convert(err).Message()
	switch {
	case strings.Contains(msg, "connection refused"):
		return outcome.ClassRefused
	case strings.Contains(msg, "tls: "), strings.Contains(msg, "authentication handshake failed"):
		return outcome.ClassTLS
	case strings.Contains(msg, "no such host"), strings.Contains(msg, "produced zero addresses"):
		return outcome.ClassDNS
	case strings.Contains(msg, "connection reset"), strings.Contains(msg, "broken pipe"),
		strings.Contains(msg, "error reading from server"), strings.Contains(msg, "connection closed"),
		strings.Contains(msg, "transport is closing"):
		return outcome.ClassReset
	case strings.Contains(msg, "i/o timeout"):
		return outcome.ClassTimeout
	}
	return outcome.ClassStatus
}

// HTTPStatus is the HTTP status that google.rpc.Code documents for each
// gRPC code (OK 200, CANCELLED 499, INVALID_ARGUMENT 400, NOT_FOUND 404,
// RESOURCE_EXHAUSTED 429, UNIMPLEMENTED 501, UNAVAILABLE 503,
// DEADLINE_EXCEEDED 504, ...). Outcomes carry it as their Status, so that
// status tables and SLOs written for HTTP read gRPC calls too; several
// codes share 400, 409 and 500, so the exact codes are counted apart
// (Codes). A call that got no answer at all (Class is not ok or status)
// has Status 0, as an HTTP request without a response does.
func HTTPStatus(code codes.Code) int { return grpcstatus.HTTPStatus(code) }

// ParseCode reads a status code by its name as gRPC's specification
// writes it ("UNAVAILABLE", "DEADLINE_EXCEEDED"; any case; CANCELED too)
// or by its number (0 to 16).
func ParseCode(s string) (codes.Code, bool) { return grpcstatus.Parse(s) }

// CodeName is the code's name as gRPC's specification writes it:
// "UNAVAILABLE"; codes beyond the specification print as "CODE(17)".
func CodeName(c codes.Code) string { return grpcstatus.Name(c) }
