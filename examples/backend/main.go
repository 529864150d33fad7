// Command backend is a small HTTP service to put behind the example
// gateway (examples/gateway.yaml): it answers with its name, serves
// /healthz, and can be made slow or failing per request so that the
// gateway's policies can be watched at work.
//
//	go run ./examples/backend -addr 127.0.0.1:9001 -name users
//	curl 'localhost:9001/anything?sleep=300ms&status=503'
//
// For capacity work (docs/capacity.md) it can behave like a service with
// a limited capacity: -workers bounds the requests it works on at once
// (the others wait their turn, as behind a thread pool), -sleep gives
// every request a service time, and ?work=N burns the CPU of N rounds of
// SHA-256 over 1 KiB, so that a replica pinned to one core has a real
// CPU-bound knee.
//
//	go run ./examples/backend -addr 127.0.0.1:9001 -workers 1 -sleep 20ms   # 50 req/s
//	curl 'localhost:9001/?work=2000'
package main

import (
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9001", "address to listen on")
	name := flag.String("name", "backend", "name to answer with")
	workers := flag.Int("workers", 0, "requests worked on at once, the others waiting their turn (0: no limit)")
	sleep := flag.Duration("sleep", 0, "service time of every request, spent holding a worker")
	flag.Parse()
	var pool chan struct{}
	if *workers > 0 {
		pool = make(chan struct{}, *workers)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		// A server-sent event stream: the gateway passes each event on at once.
		w.Header().Set("Content-Type", "text/event-stream")
		f, _ := w.(http.Flusher)
		for i := range 5 {
			fmt.Fprintf(w, "data: %s %d\n\n", *name, i)
			if f != nil {
				f.Flush()
			}
			select {
			case <-time.After(200 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if pool != nil {
			select {
			case pool <- struct{}{}:
				defer func() { <-pool }()
			case <-r.Context().Done():
				return
			}
		}
		if *sleep > 0 {
			select {
			case <-time.After(*sleep):
			case <-r.Context().Done():
				return
			}
		}
		if n, err := strconv.Atoi(q.Get("work")); err == nil && n > 0 {
			burn(min(n, 1_000_000))
		}
		if d, err := time.ParseDuration(q.Get("sleep")); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		status := http.StatusOK
		if s, err := strconv.Atoi(q.Get("status")); err == nil && s >= 100 && s <= 599 {
			status = s
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]any{
			"service": *name, "path": r.URL.Path, "request_id": r.Header.Get("X-Request-Id"),
			"forwarded_for": r.Header.Get("X-Forwarded-For"),
		})
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Printf("%s listening on %s", *name, *addr)
	log.Fatal(srv.ListenAndServe())
}

// burn spends the CPU of n rounds of SHA-256 over 1 KiB.
func burn(n int) {
	var buf [1024]byte
	for i := range n {
		sum := sha256.Sum256(buf[:])
		buf[i%len(buf)] ^= sum[0]
	}
}
