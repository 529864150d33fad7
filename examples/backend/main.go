// Command backend is a small HTTP service to put behind the example
// gateway (examples/gateway.yaml): it answers with its name, serves
// /healthz, and can be made slow or failing per request so that the
// gateway's policies can be watched at work.
//
//	go run ./examples/backend -addr 127.0.0.1:9001 -name users
//	curl 'localhost:9001/anything?sleep=300ms&status=503'
package main

import (
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
	flag.Parse()
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
