package shop

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relia-dev/relia/fault"
)

// DefaultProcessorErrorRate is the share of charges the processor fails
// by itself (HTTP 500) when Options.ProcessorErrorRate is zero: a real
// payment provider is never perfect.
const DefaultProcessorErrorRate = 0.001

// The names of the rules ProcessorFaults sets, as Processor.Faulted reports
// them.
const (
	FaultHang    = "processor-hang"
	FaultErrors  = "processor-errors"
	FaultLatency = "processor-latency"
)

// chargesPath is the processor's one business endpoint; faults apply to it
// and not to /healthz or /metrics.
const chargesPath = "/charges"

// ProcessorFaults are the fault points of the payment processor, the
// shop's flaky dependency. The zero value injects nothing.
type ProcessorFaults struct {
	// Latency is added to every charge, failing ones included.
	Latency time.Duration
	// ErrorRate is the share of charges answered with ErrorStatus instead
	// of being processed, in [0, 1].
	ErrorRate float64
	// ErrorStatus is the status of the failed charges, 500-599; zero
	// means 503.
	ErrorStatus int
	// Hang holds every charge until its caller gives up, as a processor
	// whose database is locked does.
	Hang bool
}

// rules turns the fault points into rules of relia's HTTP fault filter,
// the same faults the gateway and the fault proxy inject.
func (f ProcessorFaults) rules() ([]fault.HTTPRule, error) {
	var errs []error
	if f.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %s is negative", f.Latency))
	}
	if math.IsNaN(f.ErrorRate) || f.ErrorRate < 0 || f.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("error rate %v is not in [0, 1]", f.ErrorRate))
	}
	status := f.ErrorStatus
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	if status < 500 || status > 599 {
		errs = append(errs, fmt.Errorf("error status %d is not a 5xx", f.ErrorStatus))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("processor faults: %w", err)
	}
	match := fault.HTTPFault{Methods: []string{http.MethodPost}, Path: chargesPath}
	delay := f.Latency.Milliseconds()
	var rules []fault.HTTPRule
	if f.Hang {
		h := match
		h.Delay = int64(24 * time.Hour / time.Millisecond) // the longest a fault may hold
		rules = append(rules, fault.HTTPRule{Name: FaultHang, Probability: 1, Fault: h})
	}
	if f.ErrorRate > 0 {
		e := match
		e.Delay, e.AbortStatus = delay, status
		rules = append(rules, fault.HTTPRule{Name: FaultErrors, Probability: f.ErrorRate, Fault: e})
	}
	if delay > 0 {
		l := match
		l.Delay = delay
		rules = append(rules, fault.HTTPRule{Name: FaultLatency, Probability: 1, Fault: l})
	}
	return rules, nil
}

// Processor is the payment processor's fault switch board. Its methods
// are safe to call while traffic flows; a change applies to the next
// request.
type Processor struct {
	srv    *server
	filter *fault.HTTPFilter
	via    atomic.Pointer[string] // the base URL payments call; nil: URL()
	mu     sync.Mutex
	cur    ProcessorFaults
}

// SetFaults replaces the processor's faults with f; the zero value clears
// them. Decisions (which charge fails) come from the shop's seed and each
// charge's number, so the same seed and traffic fail the same charges.
func (p *Processor) SetFaults(f ProcessorFaults) error {
	rules, err := f.rules()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.filter.SetRules(rules); err != nil {
		return fmt.Errorf("setting processor faults: %w", err)
	}
	p.cur = f
	return nil
}

// Faults returns the faults in force.
func (p *Processor) Faults() ProcessorFaults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// SetRules replaces the processor's faults with any rules of relia's HTTP
// fault filter, for faults ProcessorFaults cannot express (a truncated
// body, corrupted bytes). Rules should match the path /charges: the rest
// are health checks and metrics.
func (p *Processor) SetRules(rules []fault.HTTPRule) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.filter.SetRules(rules); err != nil {
		return fmt.Errorf("setting processor fault rules: %w", err)
	}
	p.cur = ProcessorFaults{}
	return nil
}

// Faulted returns how many charges each fault rule has faulted so far.
func (p *Processor) Faulted() map[string]int64 { return p.filter.Faulted() }

// URL is the processor's base URL.
func (p *Processor) URL() string { return p.srv.url() }

// Via makes payments reach the processor through baseURL
// ("http://127.0.0.1:port"), a fault proxy in front of URL() say, so that
// network faults (latency, resets, a partition) hit the payments path.
// An empty baseURL restores the direct path. It applies to the next
// charge.
func (p *Processor) Via(baseURL string) error {
	if baseURL == "" {
		p.via.Store(nil)
		return nil
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return fmt.Errorf("routing payments to the processor via %q: want http://host:port", baseURL)
	}
	b := strings.TrimSuffix(baseURL, "/")
	p.via.Store(&b)
	return nil
}

// base is the base URL payments call.
func (p *Processor) base() string {
	if v := p.via.Load(); v != nil {
		return *v
	}
	return p.URL()
}

// chargeRequest is the body of POST /charges.
type chargeRequest struct {
	AmountCents int    `json:"amountCents"`
	Currency    string `json:"currency"`
	UserID      int    `json:"userId"`
}

// charge is the processor's verdict on a charge.
type charge struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "succeeded" or "declined"
}

// declineShare is the share of charges the processor declines (402), as
// cards are declined: a business answer, not an error.
const declineShare = 0.02

// processorHandler serves POST /charges, which needs an Idempotency-Key:
// a repeated key gets the first verdict, so a caller may retry a charge
// whose answer it did not see. The processor fails a share errorRate of
// charges by itself (500) before charging. The filter's faults come first,
// inside the route so that faulted answers keep the route's name.
func processorHandler(seed uint64, p pacer, errorRate float64, filter *fault.HTTPFilter) http.Handler {
	lat := newLatency(seed, "processor/charge", 8*time.Millisecond)
	errKey := streamKey(seed, "processor/errors")
	var n atomic.Uint64
	var mu sync.Mutex
	verdicts := map[string]charge{}
	mux := http.NewServeMux()
	mux.Handle("POST "+chargesPath, filter.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		var req chargeRequest
		if key == "" || decodeBody(r, &req) != nil || req.AmountCents <= 0 {
			writeJSON(w, http.StatusBadRequest, reason("bad_charge"))
			return
		}
		if p.pause(r.Context(), lat) != nil {
			return
		}
		if unit(errKey, n.Add(1)-1) < errorRate {
			writeJSON(w, http.StatusInternalServerError, reason("processor_internal_error"))
			return
		}
		mu.Lock()
		c, seen := verdicts[key]
		if !seen {
			c = charge{ID: "ch_" + strconv.FormatUint(streamKey(seed, key), 16), Status: "succeeded"}
			if unit(streamKey(seed, "processor/declines"), streamKey(seed, key)) < declineShare {
				c.Status = "declined"
			}
			verdicts[key] = c
		}
		mu.Unlock()
		status := http.StatusCreated
		if c.Status == "declined" {
			status = http.StatusPaymentRequired
		}
		writeJSON(w, status, c)
	})))
	return mux
}
