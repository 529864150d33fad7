package slo

import (
	"fmt"
	"slices"
	"strings"
)

var promqlKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "atan2", "inf", "nan",
	// Aggregations, which may come before their by (...) clause.
	"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}

// span is a part of a PromQL expression, q[start:end].
type span struct{ start, end int }

// vectorSelectors returns the vector selectors of a PromQL expression
// (name, name{matchers} or {matchers}), in order. It knows selectors,
// function calls, aggregations with by/without, binary operators and
// their matching clauses, strings, numbers and comments, which is enough to find
// what an expression reads without a PromQL parser. Ranges and
// subqueries ([5m], [{{.window}}:]) are skipped, or refused when
// rangeErr is not empty (it is the error's text).
func vectorSelectors(q, rangeErr string) ([]span, error) {
	var out []span
	isIdent := func(c byte, first bool) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
	}
	skipSpace := func(j int) int {
		for j < len(q) && (q[j] == ' ' || q[j] == '\t' || q[j] == '\n' || q[j] == '\r') {
			j++
		}
		return j
	}
	matchClose := func(j int) (int, error) { return closeOf(q, j) }
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '#': // a comment, to the end of the line
			if end := strings.IndexByte(q[i:], '\n'); end >= 0 {
				i += end
			} else {
				i = len(q)
			}
		case c == '[':
			if rangeErr != "" {
				return nil, fmt.Errorf("%q %s", q, rangeErr)
			}
			end, err := matchClose(i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(q[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("unterminated string in %q", q)
			}
			i += end + 2
		case c == '{':
			end, err := matchClose(i)
			if err != nil {
				return nil, err
			}
			out = append(out, span{i, end})
			i = end
		case c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(q) && (isIdent(q[j], false) || q[j] == '.' || q[j] == '+' && (q[j-1] == 'e' || q[j-1] == 'E')) {
				j++
			}
			i = j
		case isIdent(c, true):
			j := i
			for j < len(q) && isIdent(q[j], false) {
				j++
			}
			word := q[i:j]
			next := skipSpace(j)
			switch lw := strings.ToLower(word); {
			case slices.Contains(promqlKeywords, lw):
				i = j
				if (lw == "by" || lw == "without" || lw == "on" || lw == "ignoring" || lw == "group_left" || lw == "group_right") && next < len(q) && q[next] == '(' {
					end, err := matchClose(next)
					if err != nil {
						return nil, err
					}
					i = end // label names, not selectors
				}
			case next < len(q) && q[next] == '(':
				i = j // a function or an aggregation
			case next < len(q) && q[next] == '{':
				end, err := matchClose(next)
				if err != nil {
					return nil, err
				}
				out = append(out, span{i, end})
				i = end
			default:
				out = append(out, span{i, j})
				i = j
			}
		default:
			i++
		}
	}
	return out, nil
}

// rateCounters rewrites a PromQL expression over counters into one over
// their per-second rates, wrapping each vector selector in
// rate(...[{{.window}}]): sum(http_requests{code="500"}) becomes
// sum(rate(http_requests{code="500"}[{{.window}}])). An expression with
// range selectors or subqueries already has its windows and is refused.
func rateCounters(q string) (string, error) {
	sels, err := vectorSelectors(q, "already has a range: add the "+windowPlaceholder+" placeholder instead of counter: true")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	last := 0
	for _, s := range sels {
		b.WriteString(q[last:s.start])
		fmt.Fprintf(&b, "rate(%s[%s])", q[s.start:s.end], windowPlaceholder)
		last = s.end
	}
	b.WriteString(q[last:])
	return b.String(), nil
}

// readsSeries reports whether a PromQL expression reads any series: one
// that does not (vector(1), a number) is the same on every server and
// cannot count a service's events.
func readsSeries(q string) bool {
	sels, err := vectorSelectors(q, "")
	return err != nil || len(sels) > 0 // a query it cannot scan is promtool's to judge
}

// closeOf returns the index after the }, ) or ] closing the one at
// q[j], skipping quoted strings and comments.
func closeOf(q string, j int) (int, error) {
	open := q[j]
	closeCh := map[byte]byte{'{': '}', '(': ')', '[': ']'}[open]
	depth := 0
	for k := j; k < len(q); k++ {
		switch c := q[k]; {
		case c == '#':
			if end := strings.IndexByte(q[k:], '\n'); end >= 0 {
				k += end
			} else {
				k = len(q)
			}
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(q[k+1:], c)
			if end < 0 {
				return 0, fmt.Errorf("unterminated string in %q", q)
			}
			k += end + 1
		case c == open:
			depth++
		case c == closeCh:
			depth--
			if depth == 0 {
				return k + 1, nil
			}
		}
	}
	return 0, fmt.Errorf("unbalanced %c in %q", open, q)
}

// summed returns q as one series: q itself when it is a sum(...) of
// everything already, sum(q) otherwise. An SLO has one SLI, so the
// queries' label sets never have to match each other.
func summed(q string) string {
	q = strings.TrimSpace(q)
	if rest, ok := strings.CutPrefix(q, "sum"); ok {
		open := len(q) - len(strings.TrimLeft(rest, " \t\n\r"))
		if open < len(q) && q[open] == '(' {
			if end, err := closeOf(q, open); err == nil && end == len(q) {
				return q
			}
		}
	}
	if strings.Contains(q, "#") {
		return "sum(" + q + "\n)" // a comment on q's last line must not hide the parenthesis
	}
	return "sum(" + q + ")"
}

// selector is a vector selector's metric name and label matchers, each
// matcher written without spaces outside its quotes.
type selector struct {
	name     string
	matchers []string
}

// parseSelectors returns the vector selectors of q, parsed.
func parseSelectors(q string) ([]selector, error) {
	spans, err := vectorSelectors(q, "")
	if err != nil {
		return nil, err
	}
	out := make([]selector, 0, len(spans))
	for _, sp := range spans {
		text := q[sp.start:sp.end]
		var sel selector
		name, body, hasBody := strings.Cut(text, "{")
		sel.name = strings.TrimSpace(name)
		if hasBody {
			for _, m := range splitMatchers(strings.TrimSuffix(body, "}")) {
				if v, ok := strings.CutPrefix(m, "__name__="); ok && sel.name == "" && len(v) >= 2 {
					sel.name = v[1 : len(v)-1]
					continue
				}
				sel.matchers = append(sel.matchers, m)
			}
		}
		out = append(out, sel)
	}
	return out, nil
}

// splitMatchers splits the inside of a selector's braces into matchers,
// dropping spaces outside quotes.
func splitMatchers(body string) []string {
	var out []string
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(body[i+1:], c)
			if end < 0 {
				end = len(body) - i - 1
			}
			b.WriteString(body[i : i+end+2])
			i += end + 1
		case c == ',':
			if b.Len() > 0 {
				out = append(out, b.String())
			}
			b.Reset()
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			b.WriteByte(c)
		}
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// refines reports whether every series query part reads is one that
// total reads too: each of part's selectors names a metric some selector
// of total names, with all of that selector's matchers and maybe more.
// When it holds and total finds series, part finding none is data (none
// of the service's events matched part's extra matchers), not a metric
// that is missing.
func refines(part, total string) bool {
	ps, err := parseSelectors(part)
	if err != nil || len(ps) == 0 {
		return false
	}
	ts, err := parseSelectors(total)
	if err != nil {
		return false
	}
	for _, p := range ps {
		if p.name == "" || !slices.ContainsFunc(ts, func(t selector) bool {
			return t.name == p.name && !slices.ContainsFunc(t.matchers, func(m string) bool { return !slices.Contains(p.matchers, m) })
		}) {
			return false
		}
	}
	return true
}
