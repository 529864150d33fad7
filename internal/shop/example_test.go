package shop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/relia-dev/relia/internal/shop"
	"github.com/relia-dev/relia/outcome"
)

func ExampleStart() {
	s, err := shop.Start(context.Background(), shop.Options{Seed: 1})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	resp, err := http.Get(s.Catalog(0).URL() + "/products/42")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	var p shop.Product
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, p.ID, p.Currency, p.PriceCents > 0)
	// Output: 200 42 EUR true
}

func ExampleProcessor_SetFaults() {
	s, err := shop.Start(context.Background(), shop.Options{Seed: 1, NoProcessorErrors: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// Every charge fails until the faults are cleared.
	if err := s.Processor().SetFaults(shop.ProcessorFaults{ErrorRate: 1, ErrorStatus: 503}); err != nil {
		panic(err)
	}
	req, _ := http.NewRequest("POST", s.Processor().URL()+"/charges", nil)
	req.Header.Set("Idempotency-Key", "k")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, s.Processor().Faulted()[shop.FaultErrors])
	// Output: 503 1
}

func ExampleReplica_Pause() {
	s, err := shop.Start(context.Background(), shop.Options{Seed: 1, CatalogReplicas: 1})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	r := s.Catalog(0)

	// A paused replica accepts the connection and answers nothing: the
	// client gives up.
	r.Pause()
	impatient := &http.Client{Timeout: 100 * time.Millisecond}
	_, err = impatient.Get(r.URL() + "/products/1")
	fmt.Println("paused:", outcome.Classify(err), r.Alive(), r.Paused())

	r.Resume()
	resp, err := impatient.Get(r.URL() + "/products/1")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println("resumed:", resp.StatusCode)
	// Output:
	// paused: timeout true true
	// resumed: 200
}
