package gateway

import (
	"bytes"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/callstore"
	"github.com/relia-dev/relia/fault"
	"github.com/relia-dev/relia/gateway/cache"
	"github.com/relia-dev/relia/resilience"
)

// retryWhen is a set of retry conditions.
type retryWhen uint8

const (
	retry5xx retryWhen = 1 << iota
	retryGatewayError
	retryConnect
	retryReset
	retry409
	retry429
)

// retryConditions are the names Retry.On takes, and what each retries.
var retryConditions = map[string]retryWhen{
	"5xx": retry5xx, "gateway-error": retryGatewayError, "connect-failure": retryConnect,
	"reset": retryReset, "retriable-4xx": retry409, "429": retry429,
}

// retryPolicy is a route's compiled Retry: resilience's own policy, driven
// a step at a time (RetryCall), judging failures by the route's retry.on.
type retryPolicy struct {
	policy   *resilience.Retry
	when     retryWhen
	grpcWhen uint32 // gRPC codes retried, a bit each (grpc.go)
	nonIdem  bool
	budget   *resilience.RetryBudget
}

// attemptFailure is how an attempt failed, as the route's Retry is told
// of it: the target's status, or how no answer came.
type attemptFailure struct {
	status int
	kind   errKind
}

func (f *attemptFailure) Error() string {
	if f.kind != errNone {
		return "upstream attempt failed: " + f.kind.String()
	}
	return "upstream answered " + strconv.Itoa(f.status)
}

// route is a compiled Route: its matcher, pool and policies, built once
// per config generation and read without locks by every request.
type route struct {
	cfg     Route
	name    string
	match   *matcher
	pool    *pool
	timeout time.Duration
	perTry  time.Duration
	maxBody int

	retry    *retryPolicy
	bulkhead *resilience.Bulkhead
	limiter  *resilience.Limiter
	rate     *resilience.KeyedRateLimiter
	shared   *sharedLimit // the rate limit when it is kept in Redis
	cache    *cache.Cache
	// cacheMaxEntry is the largest body the cache would keep.
	cacheMaxEntry int64
	auth          string // AuthRequired, AuthOptional or AuthNone
	hedge         *hedgePolicy
	faults        *fault.HTTPFilter
	// faultBody says a fault matches on the request's JSON body, which
	// is then read (a bounded prefix) before the faults decide.
	faultBody bool
	fallback  *fallbackResponse

	// quickStart says nothing on the route holds a request up before its
	// first attempt (no bulkhead queue, fault delay, Redis call or
	// credential check), so the attempt may start at the request's start.
	quickStart bool

	// names of headers to remove
	reqRemove, respRemove []string
	// the fields set and added, as bytes, built once
	reqSet, reqAdd, respSet, respAdd [][2][]byte
	// hostSet is the Host requestHeaders.set gives; nil without.
	hostSet []byte
	// upgrades are the protocols a client may switch to (lower case).
	upgrades []string
	// capture is what the route's call records keep of headers and
	// bodies; nil keeps neither (capture.go).
	capture *callstore.Redactor
}

// allowsUpgrade reports whether the route lets a client switch to proto.
func (r *route) allowsUpgrade(proto []byte) bool {
	for _, p := range r.upgrades {
		if bytes.EqualFold(proto, []byte(p)) {
			return true
		}
	}
	return false
}

// fieldPairs turns a config map of fields into name and value bytes, in
// name order so that what goes upstream does not change from one request
// to the next.
func fieldPairs(m map[string]string) [][2][]byte {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([][2][]byte, 0, len(m))
	for _, k := range names {
		out = append(out, [2][]byte{[]byte(http.CanonicalHeaderKey(k)), []byte(m[k])})
	}
	return out
}

// fallbackResponse is a Fallback ready to write.
type fallbackResponse struct {
	status      int
	body        []byte
	contentType []byte
	headers     [][2][]byte
}

// retryable reports whether an attempt that failed this way may be
// retried under the policy.
func (p *retryPolicy) retryable(status int, kind errKind) bool {
	switch kind {
	case errConnect:
		return p.when&retryConnect != 0
	case errReset, errTimeout, errInvalid:
		return p.when&retryReset != 0
	}
	switch {
	case status >= 500 && p.when&retry5xx != 0:
		return true
	case (status == 502 || status == 503 || status == 504) && p.when&retryGatewayError != 0:
		return true
	case status == 409 && p.when&retry409 != 0:
		return true
	case status == 429 && p.when&retry429 != 0:
		return true
	}
	return false
}

// idempotentMethod reports whether RFC 9110 lets a client repeat method.
func idempotentMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// retryAfterSeconds renders a wait as Retry-After's delta-seconds, rounded
// up so a client never comes back early.
func retryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(d.Seconds())), 10)
}

// headerIn reports whether name (canonical) is in list.
func headerIn(list []string, name string) bool {
	for _, h := range list {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}
