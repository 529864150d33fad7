package auth_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/relia-dev/relia/gateway/auth"
)

// An API key file names each key's tenant and routes and stores only its
// hash; the authenticator answers who is calling, or why not.
func ExampleAuthenticator_Authenticate() {
	key := "relia_4mYl2i8XyQbWj0sV7cT3nH5eR9uK1oP6aZ_dF0gL"
	file := fmt.Sprintf(`kind: APIKeys
version: relia/v1
spec:
  keys:
    - id: shop-web
      tenant: shop
      routes: [catalog, "orders-*"]
      sha256: %s
`, auth.HashKey(key))
	keys, err := auth.ParseKeys("keys.yaml", []byte(file))
	if err != nil {
		fmt.Println(err)
		return
	}
	a, err := auth.New(auth.Settings{Keys: keys})
	if err != nil {
		fmt.Println(err)
		return
	}

	id, err := a.Authenticate(http.Header{"X-Api-Key": {key}}, "orders-eu")
	fmt.Println(id.Tenant, id.Subject, err)

	for _, h := range []http.Header{{"X-Api-Key": {key}}, {"X-Api-Key": {"guess"}}} {
		_, err = a.Authenticate(h, "admin")
		var ae *auth.Error
		if errors.As(err, &ae) {
			fmt.Println(ae.Status, string(ae.JSON()))
		}
	}
	// Output:
	// shop shop-web <nil>
	// 403 {"reason":"forbidden","policy":"auth","message":"API key shop-web may not call route admin"}
	// 401 {"reason":"invalid_credentials","policy":"auth","message":"unknown API key"}
}

// Access logs pass every header through Redact.
func ExampleRedact() {
	fmt.Println(auth.Redact("Authorization", "Bearer eyJ..."))
	fmt.Println(auth.Redact("Accept", "application/json"))
	// Output:
	// [redacted]
	// application/json
}
