package shop

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// The catalog's size: NumProducts products, PageSize to a page.
const (
	NumProducts = 500
	PageSize    = 20
	NumPages    = (NumProducts + PageSize - 1) / PageSize
)

// Product is one item of the catalog.
type Product struct {
	ID         int     `json:"id"`
	Name       string  `json:"name"`
	Category   string  `json:"category"`
	PriceCents int     `json:"priceCents"`
	Currency   string  `json:"currency"`
	Stock      int     `json:"stock"`
	Rating     float64 `json:"rating"`
}

// productPage is the body of GET /products.
type productPage struct {
	Page     int       `json:"page"`
	PageSize int       `json:"pageSize"`
	Total    int       `json:"total"`
	Products []Product `json:"products"`
}

var (
	adjectives = []string{"Cosy", "Rugged", "Sleek", "Vintage", "Compact", "Deluxe", "Classic", "Smart", "Organic", "Wireless", "Handmade", "Ultralight"}
	nouns      = map[string][]string{
		"electronics": {"Headphones", "Speaker", "Charger", "Keyboard", "Monitor", "Camera"},
		"home":        {"Lamp", "Blanket", "Kettle", "Mug", "Chair", "Rug"},
		"outdoor":     {"Tent", "Backpack", "Jacket", "Lantern", "Bottle", "Boots"},
		"toys":        {"Puzzle", "Kite", "Robot", "Train Set", "Board Game", "Yo-yo"},
	}
	categories = []string{"electronics", "home", "outdoor", "toys"}
)

// catalogData is the catalog every replica serves, drawn once from the
// seed, with every answer encoded in advance so that serving it costs a
// write.
type catalogData struct {
	products []Product
	pages    [][]byte // pages[i] is page i+1
	emptyPg  []byte   // a page past the end
	byID     [][]byte // byID[i] is product i+1
	popular  []byte
}

func newCatalogData(seed uint64) (*catalogData, error) {
	r := rand.New(rand.NewPCG(seed, streamKey(seed, "catalog")))
	d := &catalogData{products: make([]Product, NumProducts)}
	for i := range d.products {
		cat := categories[r.IntN(len(categories))]
		d.products[i] = Product{
			ID:         i + 1,
			Name:       adjectives[r.IntN(len(adjectives))] + " " + nouns[cat][r.IntN(len(nouns[cat]))],
			Category:   cat,
			PriceCents: 199 + 100*r.IntN(300),
			Currency:   "EUR",
			Stock:      r.IntN(250),
			Rating:     float64(20+r.IntN(31)) / 10,
		}
	}
	var err error
	for p := 1; p <= NumPages; p++ {
		lo, hi := (p-1)*PageSize, min(p*PageSize, NumProducts)
		b, e := json.Marshal(productPage{Page: p, PageSize: PageSize, Total: NumProducts, Products: d.products[lo:hi]})
		d.pages = append(d.pages, b)
		err = firstErr(err, e)
	}
	d.emptyPg, _ = json.Marshal(productPage{Page: NumPages + 1, PageSize: PageSize, Total: NumProducts, Products: []Product{}})
	for _, p := range d.products {
		b, e := json.Marshal(p)
		d.byID = append(d.byID, b)
		err = firstErr(err, e)
	}
	d.popular, _ = json.Marshal(recommendation{Source: "popular", Items: popularOf(d.products)})
	if err != nil {
		return nil, fmt.Errorf("encoding the catalog: %w", err)
	}
	return d, nil
}

// popularOf is the best-rated products, the cheap answer that stands in
// for personalised recommendations.
func popularOf(ps []Product) []Product {
	top := slices.Clone(ps)
	slices.SortStableFunc(top, func(a, b Product) int {
		switch {
		case a.Rating > b.Rating:
			return -1
		case a.Rating < b.Rating:
			return 1
		}
		return a.ID - b.ID
	})
	return top[:numRecommended]
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// catalogHandler serves one replica: GET /products?page=N (1-based, 20 a
// page), GET /products/{id}, and the cart (cart.go).
func catalogHandler(d *catalogData, p pacer, seed uint64, replica int) http.Handler {
	list := newLatency(seed, fmt.Sprintf("catalog/%d/list", replica), 4*time.Millisecond)
	item := newLatency(seed, fmt.Sprintf("catalog/%d/item", replica), 2*time.Millisecond)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products", func(w http.ResponseWriter, r *http.Request) {
		page := 1
		if s := r.URL.Query().Get("page"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				writeJSON(w, http.StatusBadRequest, reason("bad_page"))
				return
			}
			page = n
		}
		if p.pause(r.Context(), list) != nil {
			return
		}
		if page > NumPages {
			writeRaw(w, http.StatusOK, d.emptyPg)
			return
		}
		writeRaw(w, http.StatusOK, d.pages[page-1])
	})
	mux.HandleFunc("GET /products/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || n < 1 || n > NumProducts {
			writeJSON(w, http.StatusNotFound, reason("no_such_product"))
			return
		}
		if p.pause(r.Context(), item) != nil {
			return
		}
		writeRaw(w, http.StatusOK, d.byID[n-1])
	})
	cartRoutes(mux, d, p, item)
	return mux
}

// writeRaw answers with a JSON body encoded in advance.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// writeJSON answers with v encoded as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"reason":"encoding_failed"}`)
	}
	writeRaw(w, status, b)
}

// reason is the body of every answer the shop refuses or fails with.
func reason(r string) map[string]string { return map[string]string{"reason": r} }
