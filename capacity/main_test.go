package capacity

import (
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"
)

// serviceEnv makes the test binary a replica of a small service on
// $PORT: the command the proved runs scale.
const serviceEnv = "RELIA_CAPACITY_TEST_SERVICE"

func TestMain(m *testing.M) {
	if os.Getenv(serviceEnv) != "" {
		srv := &http.Server{Addr: "127.0.0.1:" + os.Getenv("PORT"), ReadHeaderTimeout: 5 * time.Second, Handler: poolHandler(20 * time.Millisecond)}
		fmt.Fprintln(os.Stderr, srv.ListenAndServe())
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// poolHandler serves one request at a time, each after d, and answers
// /healthz at once: a replica with a pool of one worker, 1/d requests a
// second. A request that finds the worker busy waits its turn, so latency
// grows with the requests in flight.
func poolHandler(d time.Duration) http.Handler {
	sem := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		time.Sleep(d)
		<-sem
		fmt.Fprintln(w, "ok")
	})
	return mux
}
