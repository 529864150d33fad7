package slo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relia-dev/relia/internal/config"
)

// PromClient reads from a Prometheus server's HTTP API (or any server
// that speaks it: Thanos, Mimir, VictoriaMetrics): instant queries and
// the alerts the server's rules have raised.
type PromClient struct {
	base *url.URL
	hc   *http.Client
}

// NewPromClient returns a client of the Prometheus server at baseURL
// ("http://prometheus:9090", a path prefix allowed). A nil hc means an
// http.Client with a 30-second timeout.
func NewPromClient(baseURL string, hc *http.Client) (*PromClient, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus URL %q: want http(s)://host:port", baseURL)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &PromClient{base: u, hc: hc}, nil
}

// Sample is one series of an instant query's result.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// PromAlert is an alert a Prometheus server's rules have raised.
type PromAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// State is "pending" or "firing".
	State    string    `json:"state"`
	ActiveAt time.Time `json:"activeAt"`
}

// apiResponse is the envelope of every Prometheus API answer.
type apiResponse struct {
	Status    string          `json:"status"`
	Data      json.RawMessage `json:"data"`
	ErrorType string          `json:"errorType"`
	Error     string          `json:"error"`
}

func (c *PromClient) get(ctx context.Context, path string, params url.Values, into any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("querying prometheus: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading prometheus's answer: %w", err)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("prometheus answered %s with no API response (is %s a Prometheus server?)", resp.Status, c.base)
	}
	if r.Status != "success" {
		return fmt.Errorf("prometheus: %s: %s", r.ErrorType, r.Error)
	}
	return json.Unmarshal(r.Data, into)
}

// Query evaluates an instant PromQL query now and returns its vector.
func (c *PromClient) Query(ctx context.Context, query string) ([]Sample, error) {
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := c.get(ctx, "/api/v1/query", url.Values{"query": {query}}, &data); err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	if data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: got a %s, want a vector", query, data.ResultType)
	}
	out := make([]Sample, 0, len(data.Result))
	for _, r := range data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: bad sample value %v", query, r.Value[1])
		}
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// Alerts returns the alerts the server's rules have raised, pending and
// firing.
func (c *PromClient) Alerts(ctx context.Context) ([]PromAlert, error) {
	var data struct {
		Alerts []PromAlert `json:"alerts"`
	}
	if err := c.get(ctx, "/api/v1/alerts", nil, &data); err != nil {
		return nil, fmt.Errorf("listing alerts: %w", err)
	}
	return data.Alerts, nil
}

// Buckets returns the bucket bounds (le labels, +Inf left out) of the
// classic histogram metric among the series selector picks, as the
// server has them now, ascending.
func (c *PromClient) Buckets(ctx context.Context, metric, selector string) ([]float64, error) {
	sel := strings.TrimSpace(strings.Trim(strings.TrimSpace(selector), "{}"))
	q := fmt.Sprintf("count by (le) (%s_bucket{%s})", metric, sel)
	samples, err := c.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	var bounds []float64
	for _, s := range samples {
		b, err := strconv.ParseFloat(s.Labels["le"], 64)
		if err != nil || math.IsInf(b, 1) {
			continue
		}
		bounds = append(bounds, b)
	}
	slices.Sort(bounds)
	return slices.Compact(bounds), nil
}

// Status is where an SLO stands now, as its rules in Prometheus see it.
type Status struct {
	ID        string  `json:"id"`
	Service   string  `json:"service"`
	Name      string  `json:"name"`
	Objective float64 `json:"objective"`
	// Period is the SLO's period, as its rules record it.
	Period string `json:"period"`
	// SLI is the share of good events over the period; nil without data.
	SLI *float64 `json:"sli"`
	// BudgetRemaining is the share of the period's error budget left
	// (negative once overspent); nil without data.
	BudgetRemaining *float64 `json:"budget_remaining"`
	// BurnRates are the burn rates over each recorded window, by window.
	BurnRates map[string]float64 `json:"burn_rates"`
	// Alerts are the SLO's pending and firing alerts.
	Alerts []AlertStatus `json:"alerts"`
}

// AlertStatus is one of an SLO's raised alerts.
type AlertStatus struct {
	Name     string    `json:"name"`
	Severity string    `json:"severity"`
	State    string    `json:"state"`
	ActiveAt time.Time `json:"active_at"`
}

// Met reports whether the SLO meets its objective over the period so far
// (true without data: nothing has failed).
func (s Status) Met() bool { return s.BudgetRemaining == nil || *s.BudgetRemaining >= 0 }

// FetchStatus reads the status of the SLOs whose rules a Prometheus
// server runs: relia's and Sloth's, whose series share names. With ids,
// only those SLOs, each of which must be there; without, every SLO the
// server has. Sorted by id.
func FetchStatus(ctx context.Context, c *PromClient, ids ...string) ([]Status, error) {
	objectives, err := c.Query(ctx, objectiveMetric)
	if err != nil {
		return nil, err
	}
	byID := map[string]*Status{}
	for _, s := range objectives {
		id := s.Labels["sloth_id"]
		if id == "" || len(ids) > 0 && !slices.Contains(ids, id) {
			continue
		}
		byID[id] = &Status{ID: id, Service: s.Labels["sloth_service"], Name: s.Labels["sloth_slo"], Objective: s.Value, BurnRates: map[string]float64{}}
	}
	var missing []string
	for _, id := range ids {
		if byID[id] == nil {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("prometheus at %s has no rules for SLO %s (no %s series): load the rules relia slo generate writes", c.base, strings.Join(missing, ", "), objectiveMetric)
	}
	each := func(metric string, f func(st *Status, s Sample)) error {
		samples, err := c.Query(ctx, metric)
		if err != nil {
			return err
		}
		for _, s := range samples {
			if st := byID[s.Labels["sloth_id"]]; st != nil {
				f(st, s)
			}
		}
		return nil
	}
	budgets := map[string]float64{}
	periods := map[string]string{}
	errs := []error{
		each(errorBudgetMetric, func(st *Status, s Sample) { budgets[st.ID] = s.Value }),
		each(periodDaysMetric, func(st *Status, s Sample) {
			st.Period = config.FormatDuration(time.Duration(math.Round(s.Value * float64(config.Day))))
			periods[st.ID] = st.Period
		}),
		each(budgetRemainingMetric, func(st *Status, s Sample) { v := s.Value; st.BudgetRemaining = &v }),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	err = each(`{__name__=~"`+ratioMetric+`.+"}`, func(st *Status, s Sample) {
		w := s.Labels["sloth_window"]
		if w == "" || math.IsNaN(s.Value) {
			return
		}
		if w == periods[st.ID] {
			sli := 1 - s.Value
			st.SLI = &sli
		}
		if b := budgets[st.ID]; b > 0 {
			st.BurnRates[w] = round12(s.Value / b)
		}
	})
	if err != nil {
		return nil, err
	}
	alerts, err := c.Alerts(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range alerts {
		if st := byID[a.Labels["sloth_id"]]; st != nil {
			st.Alerts = append(st.Alerts, AlertStatus{Name: a.Labels["alertname"], Severity: a.Labels["sloth_severity"], State: a.State, ActiveAt: a.ActiveAt})
		}
	}
	out := make([]Status, 0, len(byID))
	for _, id := range sortedKeys(byID) {
		st := byID[id]
		slices.SortFunc(st.Alerts, func(a, b AlertStatus) int { return strings.Compare(a.Severity+a.Name, b.Severity+b.Name) })
		out = append(out, *st)
	}
	return out, nil
}

// CheckBuckets checks a classic-histogram latency SLI's threshold against
// the bucket bounds the server has for its metric (see CheckThreshold),
// for services that do not declare their buckets in the spec. The error
// points at the threshold in the spec. SLOs of other kinds, and metrics
// the server has no buckets for, pass.
func (s *SLO) CheckBuckets(ctx context.Context, c *PromClient) error {
	l := s.Spec.SLI.Latency
	if l == nil || l.Metric == "" || l.Histogram == Native {
		return nil
	}
	bounds, err := c.Buckets(ctx, l.Metric, l.Selector)
	if err != nil || len(bounds) == 0 {
		return err
	}
	if err := CheckThreshold(l.Threshold, bounds); err != nil {
		return s.errorf("spec.sli.latency.threshold", "%v (buckets read from prometheus)", err)
	}
	return nil
}
