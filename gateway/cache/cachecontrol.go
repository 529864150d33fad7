package cache

import (
	"strconv"
	"strings"
)

// Absent is the value of a Directives delta field whose directive is not
// present.
const Absent = -1

// MaxDelta is the largest delta-seconds a directive holds: RFC 9111
// section 1.2.2 has larger values read as 2^31, so they never overflow.
const MaxDelta = 1 << 31

// Directives are the Cache-Control directives (RFC 9111 section 5.2, RFC
// 5861) of a request or a response that this cache acts on. Delta fields
// are seconds, Absent when the directive is not there.
//
// Field-qualified forms (private="Set-Cookie", no-cache="X-Token") are read
// as the unqualified directive: a shared cache is then stricter than it
// needs to be, never looser.
type Directives struct {
	NoStore         bool
	NoCache         bool
	Private         bool
	Public          bool
	MustRevalidate  bool
	ProxyRevalidate bool
	NoTransform     bool
	OnlyIfCached    bool
	Immutable       bool

	MaxAge               int64
	SMaxAge              int64
	MaxStale             int64 // a bare max-stale (any staleness) is MaxDelta
	MinFresh             int64
	StaleIfError         int64
	StaleWhileRevalidate int64
}

// ParseCacheControl reads a Cache-Control field value: directives
// separated by commas, each a token with an optional =token or
// ="quoted-string" argument, names in any case. It never fails: unknown
// directives are ignored, as RFC 9111 requires, and so is a malformed
// argument, except that a malformed max-age or s-maxage reads as 0, so
// that a response whose freshness cannot be read is stale rather than
// fresh. When a directive appears twice, the first occurrence counts.
// Several field lines are read by joining them with commas. It does not
// allocate.
func ParseCacheControl(v string) Directives {
	var flags [len(flagDirectives)]bool
	var deltas [len(deltaDirectives)]int64
	for i := range deltas {
		deltas[i] = Absent
	}
	for v != "" {
		var name, arg string
		var quoted bool
		name, arg, quoted, v = nextDirective(v)
		for i, f := range flagDirectives {
			if strings.EqualFold(name, f) {
				flags[i] = true
			}
		}
		for i, f := range deltaDirectives {
			if !strings.EqualFold(name, f.name) {
				continue
			}
			if f.name == "max-stale" && deltas[i] == Absent && arg == "" && !quoted {
				deltas[i] = MaxDelta // any staleness
			}
			setDelta(&deltas[i], arg, f.invalid)
		}
	}
	return Directives{
		NoStore: flags[0], NoCache: flags[1], Private: flags[2], Public: flags[3],
		MustRevalidate: flags[4], ProxyRevalidate: flags[5], NoTransform: flags[6],
		OnlyIfCached: flags[7], Immutable: flags[8],
		MaxAge: deltas[0], SMaxAge: deltas[1], MaxStale: deltas[2], MinFresh: deltas[3],
		StaleIfError: deltas[4], StaleWhileRevalidate: deltas[5],
	}
}

// flagDirectives are the directives without an argument, in the order of
// Directives' fields and of String.
var flagDirectives = [...]string{
	"no-store", "no-cache", "private", "public", "must-revalidate",
	"proxy-revalidate", "no-transform", "only-if-cached", "immutable",
}

// deltaDirectives are the directives with delta-seconds, in the order of
// Directives' fields, each with what a malformed argument reads as: 0 for
// the freshness directives, so that an unreadable lifetime is none, and
// Absent for the rest.
var deltaDirectives = [...]struct {
	name    string
	invalid int64
}{
	{"max-age", 0}, {"s-maxage", 0}, {"max-stale", Absent},
	{"min-fresh", Absent}, {"stale-if-error", Absent}, {"stale-while-revalidate", Absent},
}

// setDelta sets *field from arg unless it is already set; a malformed arg
// sets invalid.
func setDelta(field *int64, arg string, invalid int64) {
	if *field != Absent {
		return
	}
	if n, ok := parseDelta(arg); ok {
		*field = n
	} else {
		*field = invalid
	}
}

// parseDelta reads delta-seconds: one or more digits, clamped to
// MaxDelta.
func parseDelta(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < MaxDelta {
			n = n*10 + int64(c-'0')
		}
	}
	return min(n, MaxDelta), true
}

// nextDirective splits the first directive off v: its name, its argument
// (unquoted), whether the argument was a quoted-string, and the rest
// after the following comma.
func nextDirective(v string) (name, arg string, quoted bool, rest string) {
	v = strings.TrimLeft(v, " \t,")
	i := 0
	for i < len(v) && v[i] != '=' && v[i] != ',' {
		i++
	}
	name = strings.TrimRight(v[:i], " \t")
	if i == len(v) || v[i] == ',' {
		return name, "", false, v[i:]
	}
	v = strings.TrimLeft(v[i+1:], " \t")
	if v != "" && v[0] == '"' {
		// A quoted-string may hold commas and backslash escapes; the
		// argument is what lies between the quotes, escapes kept (no
		// directive this cache reads needs them undone).
		j := 1
		for j < len(v) && v[j] != '"' {
			if v[j] == '\\' && j+1 < len(v) {
				j++
			}
			j++
		}
		arg = v[1:min(j, len(v))]
		rest = v[min(j+1, len(v)):]
		if k := strings.IndexByte(rest, ','); k >= 0 {
			rest = rest[k:]
		} else {
			rest = ""
		}
		return name, arg, true, rest
	}
	j := strings.IndexByte(v, ',')
	if j < 0 {
		j = len(v)
	}
	return name, strings.TrimRight(v[:j], " \t"), false, v[j:]
}

// String writes the directives back as a Cache-Control value, in a fixed
// order, so that ParseCacheControl(d.String()) == d.
func (d Directives) String() string {
	flags := [len(flagDirectives)]bool{d.NoStore, d.NoCache, d.Private, d.Public,
		d.MustRevalidate, d.ProxyRevalidate, d.NoTransform, d.OnlyIfCached, d.Immutable}
	deltas := [len(deltaDirectives)]int64{d.MaxAge, d.SMaxAge, d.MaxStale, d.MinFresh,
		d.StaleIfError, d.StaleWhileRevalidate}
	var b []byte
	sep := func() {
		if len(b) > 0 {
			b = append(b, ", "...)
		}
	}
	for i, on := range flags {
		if on {
			sep()
			b = append(b, flagDirectives[i]...)
		}
	}
	for i, v := range deltas {
		if v != Absent {
			sep()
			b = append(b, deltaDirectives[i].name...)
			b = append(b, '=')
			b = strconv.AppendInt(b, v, 10)
		}
	}
	return string(b)
}
