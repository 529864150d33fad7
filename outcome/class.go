package outcome

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/relia-dev/relia/internal/h1"
)

// Class is what became of a request. The SLO engine counts good and total
// events by class, so every producer (load generator, gateway, fault proxy)
// must map the same failure to the same class: use Classify for errors and
// ClassifyResponse for responses rather than local rules.
type Class uint8

// The classes. Their order is part of the serialisation only through their
// names (see String), so new classes may be added before NumClasses.
const (
	// ClassOK is a response that is not a failure.
	ClassOK Class = iota
	// ClassStatus is a response whose status is a failure (5xx and 429 by
	// ClassifyResponse's rule; callers with other rules decide themselves).
	ClassStatus
	// ClassTimeout is a request that ran out of time: the caller's deadline
	// or an I/O timeout.
	ClassTimeout
	// ClassRefused is a connection the peer refused.
	ClassRefused
	// ClassReset is a connection that broke: reset, broken pipe, or EOF
	// before the response was complete.
	ClassReset
	// ClassDNS is a name that could not be resolved.
	ClassDNS
	// ClassTLS is a failed TLS handshake or certificate check.
	ClassTLS
	// ClassCheck is a response that arrived but failed a check on it (load
	// generator checks on status, body or latency).
	ClassCheck
	// ClassDropped is a request that was never sent: an open-model arrival
	// found no free worker or the in-flight cap was reached. Dropped
	// outcomes count in totals but have no latency.
	ClassDropped
	// ClassCanceled is a request abandoned because the caller's context was
	// cancelled.
	ClassCanceled
	// ClassProtocol is a peer that answered with bytes that are not a
	// valid HTTP response: garbage, a malformed status line or header,
	// broken framing (a bad Content-Length or chunk), a head over the
	// size limit, or an HTTP/2 protocol error.
	ClassProtocol
	// ClassOther is any other failure: one that none of the rules of
	// Classify recognises.
	ClassOther
	// NumClasses is the number of classes, for arrays indexed by Class.
	NumClasses
)

var classNames = [NumClasses]string{
	ClassOK:       "ok",
	ClassStatus:   "status",
	ClassTimeout:  "timeout",
	ClassRefused:  "refused",
	ClassReset:    "reset",
	ClassDNS:      "dns",
	ClassTLS:      "tls",
	ClassCheck:    "check",
	ClassDropped:  "dropped",
	ClassCanceled: "canceled",
	ClassProtocol: "protocol",
	ClassOther:    "other",
}

// String returns the class's name as used in reports, metric labels and
// the serialisation ("ok", "status", "timeout", ...). Values outside the
// defined classes print as "class(N)" so that they are never mistaken for
// a real one.
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", uint8(c))
}

// ParseClass is the inverse of String; the name must match exactly.
func ParseClass(s string) (Class, error) {
	for c, name := range classNames {
		if s == name {
			return Class(c), nil
		}
	}
	return 0, fmt.Errorf("unknown outcome class %q (want one of %s)", s, strings.Join(classNames[:], ", "))
}

// MarshalText lets classes appear by name in JSON and YAML, including as
// map keys.
func (c Class) MarshalText() ([]byte, error) {
	if c >= NumClasses {
		return nil, fmt.Errorf("marshaling outcome class: %s is not defined", c)
	}
	return []byte(classNames[c]), nil
}

// UnmarshalText accepts the names String returns.
func (c *Class) UnmarshalText(b []byte) error {
	v, err := ParseClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Failed reports whether the class is a failure: everything but ClassOK.
// SLIs that count some failures as good (a 429 shed on purpose, a
// dropped arrival) pass their own predicate to Summary.Good instead.
func (c Class) Failed() bool { return c != ClassOK }

// RequestFailed reports whether an outcome of the class is a failed
// request as k6's http_req_failed counts them: one that was sent and got
// no answer, or a status outside the expected ones. ClassOK, ClassCheck
// (a response that arrived and failed a check on it: the checks count
// it) and ClassDropped (never sent) are not failed requests. Every
// figure relia labels "failed" (the load summary, thresholds, the
// experiment's error rates and the reports) counts by this rule.
func (c Class) RequestFailed() bool {
	return c != ClassOK && c != ClassCheck && c != ClassDropped
}

// ErrProtocol marks an error as the peer breaking HTTP: wrap it
// (fmt.Errorf("%w: ...", outcome.ErrProtocol)) and Classify returns
// ClassProtocol.
var ErrProtocol = errors.New("protocol error")

// Classify maps a request's error to its class, so that the load
// generator, the gateway and the fault proxy name the same failure the
// same way. The first matching rule wins:
//
//   - nil: ClassOK
//   - context.Canceled: ClassCanceled
//   - context.DeadlineExceeded: ClassTimeout
//   - *net.DNSError: ClassDNS
//   - TLS record, alert and certificate errors (tls.RecordHeaderError,
//     tls.AlertError, *tls.CertificateVerificationError, x509 errors,
//     errors whose message carries the "tls: " prefix the standard library
//     gives the ones it does not export, and net/http's "server gave HTTP
//     response to HTTPS client"): ClassTLS
//   - ECONNREFUSED: ClassRefused
//   - ECONNRESET, ECONNABORTED, EPIPE, io.ErrUnexpectedEOF, io.EOF: ClassReset
//   - os.ErrDeadlineExceeded or any net.Error whose Timeout() is true:
//     ClassTimeout
//   - ErrProtocol, a malformed head from relia's HTTP/1.1 codec
//     (*h1.Error), and the protocol errors of the HTTP clients relia uses
//     (net/http's "malformed HTTP ...", HTTP/2 PROTOCOL_ERROR, fasthttp's
//     unreadable response heads and broken chunks): ClassProtocol
//   - anything else: ClassOther
//
// A caller's deadline is checked before DNS so that a lookup cut short by
// it counts as a timeout; a DNS server that does not answer in time is a
// DNS failure.
func Classify(err error) Class {
	switch {
	case err == nil:
		return ClassOK
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return ClassDNS
	}
	if isTLS(err) {
		return ClassTLS
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return ClassReset
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ClassTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return ClassTimeout
	}
	if isProtocol(err) {
		return ClassProtocol
	}
	return ClassOther
}

// protocolMessages are the messages of the HTTP clients' protocol errors
// whose types are not exported.
var protocolMessages = []string{
	"malformed HTTP",                                       // net/http: status line, status code, MIME header
	"PROTOCOL_ERROR",                                       // HTTP/2 connection and stream errors
	"error when reading response headers",                  // fasthttp
	"cannot parse response status code",                    // fasthttp
	"cannot find whitespace in the first line of response", // fasthttp
	"at the end of chunk",                                  // fasthttp: a chunked body that does not parse
	"after chunk size",                                     // fasthttp
}

func isProtocol(err error) bool {
	var h1Err *h1.Error
	if errors.Is(err, ErrProtocol) || errors.As(err, &h1Err) {
		return true
	}
	msg := err.Error()
	for _, m := range protocolMessages {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}

func isTLS(err error) bool {
	var (
		recordErr tls.RecordHeaderError
		alertErr  tls.AlertError
		verifyErr *tls.CertificateVerificationError
		echErr    *tls.ECHRejectionError
		authErr   x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invErr    x509.CertificateInvalidError
		rootsErr  x509.SystemRootsError
	)
	if errors.As(err, &recordErr) || errors.As(err, &alertErr) || errors.As(err, &verifyErr) ||
		errors.As(err, &echErr) || errors.As(err, &authErr) || errors.As(err, &hostErr) ||
		errors.As(err, &invErr) || errors.As(err, &rootsErr) {
		return true
	}
	// Alerts received from the peer ("remote error: tls: bad certificate")
	// and handshake failures use unexported types; the standard library
	// prefixes all of their messages with "tls: ". net/http replaces the
	// record header error of a peer that answers in plain HTTP with a
	// message of its own.
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "server gave HTTP response to HTTPS client")
}

// ClassifyResponse is the default rule for a finished HTTP exchange: a
// transport error is classified by Classify; otherwise a 5xx or 429 status
// is ClassStatus and anything else ClassOK. Producers with a different
// notion of failure (a check, a route's own status list) set Class
// themselves.
func ClassifyResponse(status int, err error) Class {
	switch {
	case err != nil:
		return Classify(err)
	case status >= 500 || status == 429:
		return ClassStatus
	default:
		return ClassOK
	}
}
