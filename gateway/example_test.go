package gateway_test

import (
	"fmt"

	"github.com/relia-dev/relia/gateway"
)

// A config is checked as a whole before anything starts: references,
// regexes and impossible combinations are errors that point into the file.
func ExampleParse() {
	_, err := gateway.Parse("gateway.yaml", []byte(`kind: Gateway
version: relia/v1
spec:
  listeners: [{address: "127.0.0.1:8080"}]
  upstreams: [{name: users, targets: [{address: "127.0.0.1:9001"}]}]
  routes:
    - name: users
      upstream: user
      rateLimit: {rate: 100, store: redis, redis: {address: "127.0.0.1:6379"}}
`))
	fmt.Println(err)
	// Output:
	// gateway.yaml:8:17: spec.routes[0].upstream: unknown upstream "user"
	// gateway.yaml:9:18: spec.routes[0].rateLimit.onUnreachable: store: redis must say what to do while Redis is unreachable: open, closed or local
}
