package shop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/resilience"
)

// numRecommended is how many products a recommendation holds.
const numRecommended = 8

// The in-process policies of a Resilient recommendations service: a call
// to a catalog replica gets CatalogCallTimeout, a failed one is tried once
// more on the next replica, and when both fail the popular items stand in.
const (
	CatalogCallTimeout  = 150 * time.Millisecond
	catalogCallAttempts = 2
)

// recommendation is the body of GET /recommendations/{userId} and of
// GET /popular.
type recommendation struct {
	UserID int       `json:"userId,omitempty"`
	Source string    `json:"source"` // "personalised" or "popular"
	Items  []Product `json:"items"`
}

// picks is what the catalog step of a recommendation produced.
type picks struct {
	items    []Product
	fallback bool
}

// recommender is the recommendations service: it reads a page of the
// catalog over HTTP, replicas in turn, then runs a slow personalisation.
type recommender struct {
	data     *catalogData
	pace     pacer
	personal *latency
	client   *http.Client
	catalog  []string // replica base URLs
	next     atomic.Uint64
	calls    *resilience.Pipeline[picks]
}

func newRecommender(seed uint64, data *catalogData, pace pacer, client *http.Client, catalog []string, resilient bool) (*recommender, error) {
	rc := &recommender{
		data: data, pace: pace, client: client, catalog: catalog,
		personal: newLatency(seed, "recommendations/personalise", 10*time.Millisecond),
		calls:    resilience.NewPipeline[picks](),
	}
	if resilient {
		fb, err := resilience.NewFallback(resilience.FallbackSettings[picks]{
			Name: "popular", Value: picks{items: popularOf(data.products), fallback: true}, Clock: pace.clock,
		})
		if err != nil {
			return nil, fmt.Errorf("building the recommendations fallback: %w", err)
		}
		retry, err := resilience.NewRetry(resilience.RetrySettings{
			Name: "catalog", MaxAttempts: catalogCallAttempts, Base: 2 * time.Millisecond, Cap: 10 * time.Millisecond, Clock: pace.clock,
		})
		if err != nil {
			return nil, fmt.Errorf("building the catalog retry: %w", err)
		}
		timeout, err := resilience.NewTimeout(resilience.TimeoutSettings{Name: "catalog", Timeout: CatalogCallTimeout, Clock: pace.clock})
		if err != nil {
			return nil, fmt.Errorf("building the catalog timeout: %w", err)
		}
		if rc.calls, err = resilience.BuildPipeline[picks](fb, retry, timeout); err != nil {
			return nil, fmt.Errorf("building the recommendations pipeline: %w", err)
		}
	}
	return rc, nil
}

// handler serves GET /recommendations/{userId} and GET /popular. Without
// resilience a catalog failure is the user's 502; with it the popular
// items are served instead, marked X-Shop-Fallback: popular.
func (rc *recommender) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /popular", func(w http.ResponseWriter, r *http.Request) {
		writeRaw(w, http.StatusOK, rc.data.popular)
	})
	mux.HandleFunc("GET /recommendations/{userId}", func(w http.ResponseWriter, r *http.Request) {
		user, err := strconv.Atoi(r.PathValue("userId"))
		if err != nil || user < 1 || user > NumUsers {
			writeJSON(w, http.StatusNotFound, reason("no_such_user"))
			return
		}
		page := 1 + user%NumPages
		got, err := rc.calls.Get(r.Context(), func(ctx context.Context) (picks, error) {
			items, err := rc.fetch(ctx, page)
			return picks{items: items}, err
		})
		if err != nil {
			if r.Context().Err() == nil {
				writeJSON(w, http.StatusBadGateway, reason("catalog_unavailable"))
			}
			return
		}
		if got.fallback {
			w.Header().Set("X-Shop-Fallback", "popular")
			writeJSON(w, http.StatusOK, recommendation{UserID: user, Source: "popular", Items: got.items})
			return
		}
		if rc.pace.pause(r.Context(), rc.personal) != nil {
			return
		}
		writeJSON(w, http.StatusOK, recommendation{UserID: user, Source: "personalised", Items: personalise(got.items, user)})
	})
	return mux
}

// fetch reads one page of the catalog from the next replica in turn.
func (rc *recommender) fetch(ctx context.Context, page int) ([]Product, error) {
	base := rc.catalog[(rc.next.Add(1)-1)%uint64(len(rc.catalog))]
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/products?page="+strconv.Itoa(page), nil)
	if err != nil {
		return nil, fmt.Errorf("building the catalog request: %w", err)
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading the catalog: status %d", resp.StatusCode)
	}
	var pg productPage
	if err := json.Unmarshal(b, &pg); err != nil {
		return nil, fmt.Errorf("decoding the catalog page: %w", err)
	}
	return pg.Products, nil
}

// personalise picks numRecommended products of the page for the user,
// the same ones every time.
func personalise(page []Product, user int) []Product {
	out := make([]Product, 0, numRecommended)
	for i := 0; i < len(page) && len(out) < numRecommended; i++ {
		out = append(out, page[(user+i*7)%len(page)])
	}
	return out
}
