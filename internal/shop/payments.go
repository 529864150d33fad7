package shop

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/relia-dev/relia/resilience"
)

// ProcessorTimeout bounds one call from payments to the processor, so a
// hanging processor costs a payment 2 s and a 504, not a goroutine forever.
const ProcessorTimeout = 2 * time.Second

// paymentRequest is the body of POST /payments.
type paymentRequest struct {
	AmountCents int    `json:"amountCents"`
	Currency    string `json:"currency"`
}

// Payment is the answer to a processed payment (201 when it succeeded,
// 402 when the card was declined).
type Payment struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	ChargeID    string `json:"chargeId"`
	AmountCents int    `json:"amountCents"`
	Currency    string `json:"currency"`
	UserID      int    `json:"userId"`
}

// payments is the payments service: it charges through the processor and
// keeps each Idempotency-Key's first verdict.
type payments struct {
	seed      uint64
	tok       tokens
	pace      pacer
	own       *latency
	client    *http.Client
	processor func() string // the processor's base URL, per call
	timeout   *resilience.Pipeline[*chargeResult]

	mu       sync.Mutex
	keys     map[string]*idempotent
	receipts map[string]receipt // by payment id
}

// idempotent is one Idempotency-Key's state: in flight until done closes,
// then the stored answer, if the payment reached a verdict.
type idempotent struct {
	done   chan struct{}
	print  [32]byte // the request's fingerprint
	stored bool
	status int
	body   []byte
	id     string // the payment's id, once stored
}

// receipt is a stored payment, which only its user may read.
type receipt struct {
	user int
	body []byte
}

// chargeResult is the processor's answer to one charge call.
type chargeResult struct {
	status int
	charge charge
}

func newPayments(seed uint64, tok tokens, pace pacer, client *http.Client, processor func() string) (*payments, error) {
	t, err := resilience.NewTimeout(resilience.TimeoutSettings{Name: "processor", Timeout: ProcessorTimeout, Clock: pace.clock})
	if err != nil {
		return nil, fmt.Errorf("building the processor timeout: %w", err)
	}
	return &payments{
		seed: seed, tok: tok, pace: pace, client: client, processor: processor,
		own:     newLatency(seed, "payments/create", 3*time.Millisecond),
		timeout: resilience.NewPipeline[*chargeResult](t),
		keys:    map[string]*idempotent{}, receipts: map[string]receipt{},
	}, nil
}

// handler serves POST /payments, POST /checkout (the same payment,
// answered as a browser's form post is: 303 to its receipt) and GET
// /payments/{id} (the receipt). A payment needs a user's token and an
// Idempotency-Key; a repeated key (of the same user, with the same body)
// gets the first verdict again, marked Idempotent-Replayed: true, so a
// client or the gateway may retry a payment without charging twice. Only
// verdicts are kept (201 charged, 402 declined): a payment that failed
// before the processor decided (502, 504) may be retried and processed.
// A repeated key with another body is refused with 422.
func (p *payments) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /payments", func(w http.ResponseWriter, r *http.Request) { p.pay(w, r, false) })
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) { p.pay(w, r, true) })
	mux.HandleFunc("GET /payments/{id}", p.receipt)
	return mux
}

// pay serves a payment. At checkout (a browser's form post) a charged
// payment is answered with 303 See Other to its receipt, payments/{id}
// relative to the checkout's path, so the client's next request is a GET
// that a reload cannot repeat; a declined card is answered 402 at once.
func (p *payments) pay(w http.ResponseWriter, r *http.Request, checkout bool) {
	user, ok := p.tok.user(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, reason("bad_token"))
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 255 {
		writeJSON(w, http.StatusBadRequest, reason("idempotency_key_required"))
		return
	}
	var req paymentRequest
	if err := decodeBody(r, &req); err != nil || req.AmountCents <= 0 || len(req.Currency) != 3 {
		writeJSON(w, http.StatusBadRequest, reason("bad_payment"))
		return
	}
	print := sha256.Sum256(fmt.Appendf(nil, "%d|%d|%s", user, req.AmountCents, req.Currency))
	scoped := strconv.Itoa(user) + "|" + key
	for {
		e, first := p.claim(scoped, print)
		if e == nil {
			writeJSON(w, http.StatusUnprocessableEntity, reason("idempotency_key_reused"))
			return
		}
		if !first {
			select {
			case <-e.done:
			case <-r.Context().Done():
				return
			}
			if e.stored {
				w.Header().Set("Idempotent-Replayed", "true")
				p.answer(w, e, checkout)
				return
			}
			continue // the first try reached no verdict: try again
		}
		p.process(w, r, user, key, req, scoped, e, checkout)
		return
	}
}

// answer writes a stored verdict: as it is, or at checkout a charged
// payment as a redirect to its receipt.
func (p *payments) answer(w http.ResponseWriter, e *idempotent, checkout bool) {
	if checkout && e.status == http.StatusCreated {
		w.Header().Set("Location", "payments/"+e.id)
		writeRaw(w, http.StatusSeeOther, e.body)
		return
	}
	writeRaw(w, e.status, e.body)
}

// receipt serves GET /payments/{id}: a payment the caller made.
func (p *payments) receipt(w http.ResponseWriter, r *http.Request) {
	user, ok := p.tok.user(r)
	if !ok {
		writeJSON(w, http.StatusUnauthorized, reason("bad_token"))
		return
	}
	p.mu.Lock()
	rc, found := p.receipts[r.PathValue("id")]
	p.mu.Unlock()
	if !found || rc.user != user {
		writeJSON(w, http.StatusNotFound, reason("no_such_payment"))
		return
	}
	if p.pace.pause(r.Context(), p.own) != nil {
		return
	}
	writeRaw(w, http.StatusOK, rc.body)
}

// claim returns the key's state and whether the caller is the one to
// process it; nil when the key was used with another request.
func (p *payments) claim(key string, print [32]byte) (*idempotent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.keys[key]; ok {
		if e.print != print {
			return nil, false
		}
		return e, false
	}
	e := &idempotent{done: make(chan struct{}), print: print}
	p.keys[key] = e
	return e, true
}

// process charges the payment and settles the key's state: stored with a
// verdict, forgotten without one.
func (p *payments) process(w http.ResponseWriter, r *http.Request, user int, key string, req paymentRequest, scoped string, e *idempotent, checkout bool) {
	defer close(e.done)
	forget := func() {
		p.mu.Lock()
		delete(p.keys, scoped)
		p.mu.Unlock()
	}
	if p.pace.pause(r.Context(), p.own) != nil {
		forget()
		return
	}
	res, err := p.timeout.Get(r.Context(), func(ctx context.Context) (*chargeResult, error) {
		return p.charge(ctx, key, user, req)
	})
	switch {
	case err == nil && (res.status == http.StatusCreated || res.status == http.StatusPaymentRequired):
		pay := Payment{
			ID: "pay_" + res.charge.ID[len("ch_"):], Status: res.charge.Status, ChargeID: res.charge.ID,
			AmountCents: req.AmountCents, Currency: req.Currency, UserID: user,
		}
		body, _ := json.Marshal(pay)
		e.stored, e.status, e.body, e.id = true, res.status, body, pay.ID
		p.mu.Lock()
		p.receipts[pay.ID] = receipt{user: user, body: body}
		p.mu.Unlock()
		p.answer(w, e, checkout)
	case r.Context().Err() != nil:
		forget()
	case errors.Is(err, resilience.ErrTimeout):
		forget()
		writeJSON(w, http.StatusGatewayTimeout, reason("processor_timeout"))
	default:
		forget()
		body := map[string]any{"reason": "processor_error"}
		if err == nil {
			body["processorStatus"] = res.status
		}
		writeJSON(w, http.StatusBadGateway, body)
	}
}

// charge calls the processor once, passing the payment's Idempotency-Key
// on, so that a charge retried after an unseen answer is not made twice.
func (p *payments) charge(ctx context.Context, key string, user int, req paymentRequest) (*chargeResult, error) {
	body, _ := json.Marshal(chargeRequest{AmountCents: req.AmountCents, Currency: req.Currency, UserID: user})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, p.processor()+chargesPath, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the charge: %w", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Idempotency-Key", key)
	resp, err := p.client.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("charging: %w", err)
	}
	defer resp.Body.Close()
	res := &chargeResult{status: resp.StatusCode}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("reading the charge: %w", err)
	}
	if res.status == http.StatusCreated || res.status == http.StatusPaymentRequired {
		if err := json.Unmarshal(b, &res.charge); err != nil {
			return nil, fmt.Errorf("decoding the charge: %w", err)
		}
		if len(res.charge.ID) <= len("ch_") {
			return nil, errors.New("decoding the charge: no charge id")
		}
	}
	return res, nil
}
