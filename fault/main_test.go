package fault

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// leaseHolderEnv makes the test binary act as a lease holder: a runner that
// adds a fault to the server at the URL it names and renews it until killed.
const leaseHolderEnv = "RELIA_FAULT_TEST_LEASE_HOLDER"

func TestMain(m *testing.M) {
	if url := os.Getenv(leaseHolderEnv); url != "" {
		holdLease(url)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdLease adds a toxic with a 1 s lease and renews it every 200 ms; it
// stops only when killed (or when the server goes away).
func holdLease(url string) {
	body := `{"name":"held","type":"latency","lease_ttl":"1s","attributes":{"latency":10}}`
	resp, err := http.Post(url+"/proxies/p/toxics", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "lease holder: adding the toxic:", err, resp)
		os.Exit(1)
	}
	resp.Body.Close()
	for {
		time.Sleep(200 * time.Millisecond)
		resp, err := http.Post(url+"/proxies/p/toxics/held/renew", "application/json", nil)
		if err != nil {
			os.Exit(1)
		}
		resp.Body.Close()
	}
}
