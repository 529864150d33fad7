package shop

import (
	"net/http"
	"strconv"
	"strings"
)

// CartCookie holds a visitor's cart: the product ids, dot-separated. The
// cart lives in the cookie, not in a replica, so any catalog replica
// answers for it, and a client that loses its cookies loses its cart.
const CartCookie = "shop_cart"

// maxCartItems bounds a cart.
const maxCartItems = 50

// cart is the body of the cart's answers.
type cart struct {
	Items      []int `json:"items"`
	Count      int   `json:"count"`
	TotalCents int   `json:"totalCents"`
}

// cartRoutes adds the cart to a catalog replica: POST /cart/items with
// {"productId": N} adds a product and sets the cart cookie, GET /cart
// answers the cart the cookie holds, with its total.
func cartRoutes(mux *http.ServeMux, d *catalogData, p pacer, lat *latency) {
	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
		if p.pause(r.Context(), lat) != nil {
			return
		}
		writeJSON(w, http.StatusOK, d.cart(cartItems(r)))
	})
	mux.HandleFunc("POST /cart/items", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ProductID int `json:"productId"`
		}
		if err := decodeBody(r, &req); err != nil {
			writeJSON(w, http.StatusBadRequest, reason("bad_body"))
			return
		}
		if req.ProductID < 1 || req.ProductID > NumProducts {
			writeJSON(w, http.StatusNotFound, reason("no_such_product"))
			return
		}
		items := cartItems(r)
		if len(items) >= maxCartItems {
			writeJSON(w, http.StatusConflict, reason("cart_full"))
			return
		}
		if p.pause(r.Context(), lat) != nil {
			return
		}
		items = append(items, req.ProductID)
		ids := make([]string, len(items))
		for i, id := range items {
			ids[i] = strconv.Itoa(id)
		}
		http.SetCookie(w, &http.Cookie{Name: CartCookie, Value: strings.Join(ids, "."), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		writeJSON(w, http.StatusOK, d.cart(items))
	})
}

// cartItems reads the cart cookie; ids that are not products are left
// out.
func cartItems(r *http.Request) []int {
	c, err := r.Cookie(CartCookie)
	if err != nil {
		return nil
	}
	var items []int
	for _, s := range strings.Split(c.Value, ".") {
		if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= NumProducts && len(items) < maxCartItems {
			items = append(items, n)
		}
	}
	return items
}

// cart prices a cart.
func (d *catalogData) cart(items []int) cart {
	c := cart{Items: items, Count: len(items)}
	if c.Items == nil {
		c.Items = []int{}
	}
	for _, id := range items {
		c.TotalCents += d.products[id-1].PriceCents
	}
	return c
}
