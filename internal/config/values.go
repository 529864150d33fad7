package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Day and Week are the units configs may use beyond time.ParseDuration's:
// SLO periods are counted in days and weeks. A day is always 24 hours
// (periods are rolling windows, not calendar days), a year 365 days.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
	Year = 365 * Day
)

// durationUnits are the units ParseDuration accepts, longest names first
// so that "ms" is not read as "m" followed by "s".
var durationUnits = []struct {
	name string
	d    time.Duration
}{
	{"ns", time.Nanosecond}, {"us", time.Microsecond}, {"µs", time.Microsecond}, {"μs", time.Microsecond},
	{"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour},
	{"d", Day}, {"w", Week}, {"y", Year},
}

// ParseDuration parses a duration as configs write it: time.ParseDuration's
// syntax ("250ms", "1h30m", "1.5s") plus the units d (24h), w (7d) and y
// (365d), so that "30d", "4w" and "1d12h" are valid. Negative durations
// are an error (no setting of relia takes one), and so is a number without
// a unit other than 0, which would otherwise be ambiguous.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", orig)
	}
	s = strings.TrimPrefix(s, "+")
	if s == "0" {
		return 0, nil
	}
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q: expected a number at %q", orig, s)
		}
		num, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: bad number %q", orig, s[:i])
		}
		s = s[i:]
		j := 0
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if j == 0 {
			return 0, fmt.Errorf("duration %q needs a unit (ms, s, m, h, d, w, y), as in %ss", orig, orig)
		}
		unit := s[:j]
		s = s[j:]
		found := false
		for _, u := range durationUnits {
			if u.name == unit {
				total += num * float64(u.d)
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("duration %q: unknown unit %q (want ns, us, ms, s, m, h, d, w or y)", orig, unit)
		}
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("duration %q is too long", orig)
	}
	return time.Duration(total), nil
}

// FormatDuration writes d the way Prometheus does (and ParseDuration
// reads): the largest units first, zero units left out, "30d", "4w",
// "1h30m", "250ms"; 0 is "0s". Durations of whole weeks are written in
// weeks, like Prometheus's own model.Duration, so that generated rule
// names match the ones other tools derive from the same period.
// Sub-millisecond parts, which Prometheus cannot express, are written in
// µs and ns.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"y", Year}, {"w", Week}, {"d", Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}, {"ns", time.Nanosecond}} {
		if n := d / u.d; n > 0 {
			// Prometheus writes weeks only when the whole rest is weeks.
			if u.d == Week && d%Week != 0 {
				continue
			}
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

// Size is a number of bytes, written in configs as "1MiB", "512KB",
// "100B" or a plain integer. KB, MB, GB and TB are powers of 1000; KiB,
// MiB, GiB and TiB powers of 1024, as everywhere outside of Windows.
type Size int64

var sizeUnits = map[string]float64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// ParseSize parses a size such as "1MiB" or "512KB" (see Size). Negative
// sizes and fractions of a byte are errors.
func ParseSize(s string) (Size, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '-' || s[i] == '+') {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: expected a number", s)
	}
	num, err := strconv.ParseFloat(s[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: bad number %q", s, s[:i])
	}
	if num < 0 {
		return 0, fmt.Errorf("size %q is negative", s)
	}
	mult, ok := sizeUnits[strings.TrimSpace(s[i:])]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)", s, strings.TrimSpace(s[i:]))
	}
	bytes := num * mult
	if bytes != math.Trunc(bytes) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	if bytes > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return Size(bytes), nil
}

// String writes the size in the largest binary unit that divides it,
// "1MiB", "1536B", so that it reads back unchanged.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.n == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML reads a Size from a string with a unit or a plain integer.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		return fmt.Errorf("expected a size such as 512KB or 1MiB, got %s", describe(n))
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML writes the size as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// JSONSchema describes a Size for editors.
func (Size) JSONSchema() map[string]any {
	return map[string]any{
		"description": "a size: bytes as an integer, or a number with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), such as 512KB or 1MiB",
		"oneOf": []any{
			map[string]any{"type": "integer", "minimum": 0},
			map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$`},
		},
	}
}

// Ratio is a fraction in [0, 1], written in configs as a number (0.999) or
// a percentage string ("99.9%"). Percentages are converted by moving the
// decimal point in the text, so "99.9%" is exactly the float64 nearest to
// 0.999, not 99.9/100 (which is not).
type Ratio float64

// ParseRatio parses a ratio such as "0.999" or "99.9%" and checks that it
// lies in [0, 1].
func ParseRatio(s string) (Ratio, error) {
	text := strings.TrimSpace(s)
	pct := strings.HasSuffix(text, "%")
	if pct {
		text = shiftDecimal(strings.TrimSpace(strings.TrimSuffix(text, "%")), 2)
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("ratio %q: expected a number such as 0.999 or a percentage such as 99.9%%", s)
	}
	if v < 0 || v > 1 {
		if !pct && v > 1 && v <= 100 {
			return 0, fmt.Errorf("%s is not in [0, 1]; write a percentage with a %% sign, as in %s%%", s, s)
		}
		return 0, fmt.Errorf("%s is not in [0, 1]", s)
	}
	return Ratio(v), nil
}

// shiftDecimal divides the decimal number in s by 10^places by moving its
// decimal point, so that no binary rounding happens before ParseFloat.
func shiftDecimal(s string, places int) string {
	sign := ""
	if strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		sign, s = s[:1], s[1:]
	}
	if s == "" || strings.ContainsAny(s, "eEnN") {
		return sign + s + "e-" + strconv.Itoa(places)
	}
	intPart, frac, _ := strings.Cut(s, ".")
	for len(intPart) < places+1 {
		intPart = "0" + intPart
	}
	cut := len(intPart) - places
	return sign + intPart[:cut] + "." + intPart[cut:] + frac
}

// String writes the ratio as a percentage with up to 12 significant
// digits, "99.9%", which reads back as the same Ratio.
func (r Ratio) String() string {
	return strconv.FormatFloat(roundSignificant(float64(r)*100, 12), 'f', -1, 64) + "%"
}

// roundSignificant rounds x to n significant digits, to hide binary
// representation noise (0.999*100 = 99.90000000000001) in output.
func roundSignificant(x float64, n int) float64 {
	v, err := strconv.ParseFloat(strconv.FormatFloat(x, 'g', n, 64), 64)
	if err != nil {
		return x
	}
	return v
}

// UnmarshalYAML reads a Ratio from a number or a percentage string.
func (r *Ratio) UnmarshalYAML(n *yaml.Node) error {
	tag := n.ShortTag()
	if n.Kind != yaml.ScalarNode || (tag != "!!str" && tag != "!!int" && tag != "!!float") {
		return fmt.Errorf("expected a ratio such as 0.999 or 99.9%%, got %s", describe(n))
	}
	if tag == "!!str" && !strings.HasSuffix(strings.TrimSpace(n.Value), "%") {
		return fmt.Errorf("expected a ratio such as 0.999 or 99.9%%, got the string %q", n.Value)
	}
	v, err := ParseRatio(n.Value)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalYAML writes the ratio as a plain number.
func (r Ratio) MarshalYAML() (any, error) { return float64(r), nil }

// JSONSchema describes a Ratio for editors.
func (Ratio) JSONSchema() map[string]any {
	return map[string]any{
		"description": "a ratio in [0, 1] (0.999) or a percentage (\"99.9%\")",
		"oneOf": []any{
			map[string]any{"type": "number", "minimum": 0, "maximum": 1},
			map[string]any{"type": "string", "pattern": `^[0-9]+(\.[0-9]+)?%$`},
		},
	}
}

// durationSchema describes a time.Duration field for editors.
func durationSchema() map[string]any {
	return map[string]any{
		"type":        "string",
		"description": "a duration such as 250ms, 1h30m, 7d or 4w",
		"pattern":     `^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h|d|w|y))+)$`,
	}
}
