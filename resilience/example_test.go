package resilience_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/relia-dev/relia/resilience"
)

// A fallback serves a default when the call fails for a chosen reason, here
// a timeout; other failures still reach the caller.
func ExampleFallback() {
	fallback, err := resilience.NewFallback(resilience.FallbackSettings[[]string]{
		Name:   "recommendations",
		Value:  []string{"bestsellers"},
		Errors: []error{resilience.ErrTimeout, resilience.ErrBreakerOpen},
	})
	if err != nil {
		panic(err)
	}
	recommendations := resilience.NewPipeline[[]string](fallback)

	slow := func(context.Context) ([]string, error) {
		return nil, fmt.Errorf("calling recommender: %w", resilience.ErrTimeout)
	}
	got, err := recommendations.Get(context.Background(), slow)
	fmt.Println(got, err)

	broken := func(context.Context) ([]string, error) { return nil, errors.New("bad request") }
	got, err = recommendations.Get(context.Background(), broken)
	fmt.Println(got, err)
	// Output:
	// [bestsellers] <nil>
	// [] bad request
}
