package cache

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/relia-dev/relia/clock"
)

// DefaultMaxBytes bounds the cache when Settings.MaxBytes is left zero.
const DefaultMaxBytes = 64 << 20

// entryOverhead is what an entry costs besides its key, header and body:
// the Entry, its list links and map slot, roughly. Counting it keeps a
// flood of tiny responses bounded too.
const entryOverhead = 256

// HeaderGetter is how the cache reads request headers, so that it works
// under any HTTP engine: http.Header satisfies it, and a fasthttp request
// header needs a one-line adapter. Get must match names
// case-insensitively.
type HeaderGetter interface {
	Get(name string) string
}

var _ HeaderGetter = http.Header(nil)

// Key names a cached resource: the request's method, host and target
// (path and query, as received). HEAD requests are answered from the
// entry of GET.
type Key struct {
	Method string
	Host   string
	Target string
}

// Settings configures a Cache. Every zero value means the default
// documented on its field; a negative value makes New fail.
type Settings struct {
	// MaxBytes bounds the memory the cache's entries take, bodies,
	// headers and keys together. Beyond it the least recently used
	// entries are dropped. Zero means DefaultMaxBytes.
	MaxBytes int64
	// MaxEntryBytes is the largest single entry stored. Zero means an
	// eighth of MaxBytes, so that one response cannot empty the cache.
	MaxEntryBytes int64
	// Clock is the source of time for ages and freshness; nil means the
	// real clock.
	Clock clock.Clock
}

// Entry is a stored response. Entries are shared by every request that
// finds them and must not be modified.
type Entry struct {
	Status int
	// Header is the response's header as stored, without hop-by-hop
	// fields and Age, which a hit recomputes.
	Header http.Header
	Body   []byte
	// Stored is when the cache received the response.
	Stored time.Time

	initialAge   time.Duration
	lifetime     time.Duration
	staleIfError time.Duration
	varyNames    []string
	varyValues   []string
	size         int64

	slot       slotKey
	prev, next *Entry
}

// Age returns the entry's age at now (RFC 9111 section 4.2.3): the age it
// had when stored, from the origin's Date and any Age header, plus the
// time it has been held here.
func (e *Entry) Age(now time.Time) time.Duration {
	return e.initialAge + max(now.Sub(e.Stored), 0)
}

// AgeHeader formats an age as the Age header's delta-seconds, for hits.
func AgeHeader(age time.Duration) string {
	return strconv.FormatInt(int64(age/time.Second), 10)
}

// slotKey is a Key without its method: GET and HEAD share entries.
type slotKey struct{ host, target string }

// Cache is an in-memory HTTP cache for a shared cache such as a gateway
// (RFC 9111): it stores GET responses whose Cache-Control or Expires give
// them a freshness lifetime, answers GET and HEAD from them while fresh,
// and keeps them past that for the stale-if-error window (RFC 5861) so
// that a failing upstream can be covered with the last good answer.
//
// It stores nothing it cannot serve without asking the origin, which it
// does not do: responses with no-store, no-cache or private, responses
// to requests with Authorization (unless public, s-maxage or
// must-revalidate allow it), responses setting cookies, Vary: *, 206
// and 304. Vary is honoured: an entry serves only requests whose varied
// headers match those it was stored for. stale-while-revalidate is not
// acted on.
//
// Memory is bounded by MaxBytes with least-recently-used eviction. A
// Cache is safe for concurrent use; a hit takes one lock and allocates
// nothing.
type Cache struct {
	maxBytes, maxEntry int64
	clock              clock.Clock

	mu    sync.Mutex
	slots map[slotKey][]*Entry // the variants of each resource
	bytes int64
	// head and tail of the recency list: head most recently used.
	head, tail *Entry
	n          int
}

// New returns an empty Cache, or an error naming a setting out of range.
func New(s Settings) (*Cache, error) {
	switch {
	case s.MaxBytes < 0:
		return nil, fmt.Errorf("cache: max bytes %d: must not be negative", s.MaxBytes)
	case s.MaxEntryBytes < 0:
		return nil, fmt.Errorf("cache: max entry bytes %d: must not be negative", s.MaxEntryBytes)
	}
	c := &Cache{maxBytes: s.MaxBytes, maxEntry: s.MaxEntryBytes, clock: clock.OrReal(s.Clock), slots: map[slotKey][]*Entry{}}
	if c.maxBytes == 0 {
		c.maxBytes = DefaultMaxBytes
	}
	if c.maxEntry == 0 {
		c.maxEntry = c.maxBytes / 8
	}
	if c.maxEntry > c.maxBytes {
		return nil, fmt.Errorf("cache: max entry bytes %d: must not exceed max bytes %d", c.maxEntry, c.maxBytes)
	}
	return c, nil
}

// Len returns how many entries the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// Bytes returns the memory the cache's entries take, as MaxBytes counts
// it.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Lookup finds the stored response for a GET or HEAD request. entry is
// nil when there is none for these request headers (another method, no
// entry, Vary mismatch, or one too old to use at all). fresh says it may
// be served as is, with Age set to its Age; otherwise the request goes to
// the upstream, and staleIfErrorOK says that entry may still be served if
// the upstream fails (an error, or a 500, 502, 503 or 504).
//
// The request's own Cache-Control counts: no-cache, or max-age or
// min-fresh it does not meet, make an entry not fresh.
func (c *Cache) Lookup(key Key, req HeaderGetter) (entry *Entry, fresh bool, staleIfErrorOK bool) {
	if key.Method != http.MethodGet && key.Method != http.MethodHead {
		return nil, false, false
	}
	now := c.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.find(slotKey{key.Host, key.Target}, req)
	if e == nil {
		return nil, false, false
	}
	age := e.Age(now)
	fresh = age < e.lifetime
	staleIfErrorOK = !fresh && e.staleIfError > 0 && age-e.lifetime <= e.staleIfError
	if !fresh && !staleIfErrorOK {
		c.remove(e) // of no use to anyone any more
		return nil, false, false
	}
	if fresh {
		if cc := req.Get("Cache-Control"); cc != "" {
			rd := ParseCacheControl(cc)
			fresh = !rd.NoCache &&
				(rd.MaxAge == Absent || age <= time.Duration(rd.MaxAge)*time.Second) &&
				(rd.MinFresh == Absent || e.lifetime-age >= time.Duration(rd.MinFresh)*time.Second)
			staleIfErrorOK = !fresh && e.staleIfError > 0
		} else if strings.EqualFold(req.Get("Pragma"), "no-cache") {
			fresh, staleIfErrorOK = false, e.staleIfError > 0
		}
	}
	c.touch(e)
	return e, fresh, staleIfErrorOK
}

// find returns the variant of slot matching req's varied headers.
func (c *Cache) find(slot slotKey, req HeaderGetter) *Entry {
	for _, e := range c.slots[slot] {
		if e.matches(req) {
			return e
		}
	}
	return nil
}

func (e *Entry) matches(req HeaderGetter) bool {
	for i, name := range e.varyNames {
		if req.Get(name) != e.varyValues[i] {
			return false
		}
	}
	return true
}

// Store offers the cache an upstream's response to a request. It stores
// a copy when the response may be stored and served (see Cache), replacing
// the entry of the same resource and varied headers, and reports whether
// it did. Only GET responses are stored.
func (c *Cache) Store(key Key, req HeaderGetter, status int, header http.Header, body []byte) bool {
	if key.Method != http.MethodGet || !storableStatus(status) {
		return false
	}
	if ParseCacheControl(req.Get("Cache-Control")).NoStore {
		return false
	}
	rd := ParseCacheControl(strings.Join(header.Values("Cache-Control"), ","))
	switch {
	case rd.NoStore, rd.NoCache, rd.Private:
		return false
	case req.Get("Authorization") != "" && !rd.Public && rd.SMaxAge == Absent && !rd.MustRevalidate:
		// RFC 9111 section 3.5: a shared cache keeps answers to
		// authenticated requests only when the origin says so.
		return false
	case len(header.Values("Set-Cookie")) > 0:
		// A session handed to one client must not reach the next.
		return false
	}
	now := c.clock.Now()
	e := &Entry{Status: status, Stored: now}
	e.lifetime = lifetime(rd, header, now)
	if rd.StaleIfError > 0 && !rd.MustRevalidate && !rd.ProxyRevalidate && rd.SMaxAge == Absent {
		// RFC 9111 section 4.2.4: these directives forbid serving stale.
		e.staleIfError = time.Duration(rd.StaleIfError) * time.Second
	}
	if e.lifetime <= 0 && e.staleIfError <= 0 {
		return false
	}
	e.initialAge = initialAge(header, now)
	vary := strings.Join(header.Values("Vary"), ",")
	for name := range strings.SplitSeq(vary, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "":
			continue
		case "*":
			return false // varies on something no request header shows
		}
		name = http.CanonicalHeaderKey(name)
		e.varyNames = append(e.varyNames, name)
		e.varyValues = append(e.varyValues, req.Get(name))
	}
	e.Header = storedHeader(header)
	e.Body = append([]byte(nil), body...)
	e.slot = slotKey{key.Host, key.Target}
	e.size = entryOverhead + int64(len(e.slot.host)+len(e.slot.target)+len(e.Body))
	for name, vs := range e.Header {
		for _, v := range vs {
			e.size += int64(len(name) + len(v))
		}
	}
	for i, name := range e.varyNames {
		e.size += int64(len(name) + len(e.varyValues[i]))
	}
	if e.size > c.maxEntry {
		return false
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	// What this request found before, the new response replaces, whether
	// or not it varies on the same headers.
	for old := c.find(e.slot, req); old != nil; old = c.find(e.slot, req) {
		c.remove(old)
	}
	c.slots[e.slot] = append(c.slots[e.slot], e)
	c.pushFront(e)
	c.bytes += e.size
	c.n++
	for c.bytes > c.maxBytes {
		c.remove(c.tail)
	}
	return true
}

// Invalidate drops every entry of the resource at key's host and target,
// whatever the method: RFC 9111 section 4.4 has a successful unsafe
// request (POST, PUT, DELETE) invalidate what the cache holds for its
// target.
func (c *Cache) Invalidate(key Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.slots[slotKey{key.Host, key.Target}] {
		c.unlink(e)
		c.bytes -= e.size
		c.n--
	}
	delete(c.slots, slotKey{key.Host, key.Target})
}

// storableStatus reports whether a response with status is final and
// complete: 206 holds part of a body, and 304 none.
func storableStatus(status int) bool {
	return status >= 200 && status < 600 && status != http.StatusPartialContent && status != http.StatusNotModified
}

// lifetime is the response's freshness lifetime (RFC 9111 section
// 4.2.1): s-maxage, else max-age, else Expires minus Date. An Expires
// that does not parse means already expired. No heuristic freshness: a
// response without explicit freshness is not cached.
func lifetime(rd Directives, header http.Header, now time.Time) time.Duration {
	switch {
	case rd.SMaxAge != Absent:
		return time.Duration(rd.SMaxAge) * time.Second
	case rd.MaxAge != Absent:
		return time.Duration(rd.MaxAge) * time.Second
	}
	exp := header.Get("Expires")
	if exp == "" {
		return 0
	}
	expires, err := http.ParseTime(exp)
	if err != nil {
		return 0
	}
	date := now
	if d, err := http.ParseTime(header.Get("Date")); err == nil {
		date = d
	}
	return expires.Sub(date)
}

// initialAge is the response's age on arrival: the larger of its Age
// header and how far its Date lies in the past (RFC 9111 section
// 4.2.3, with the request's round trip taken as nothing).
func initialAge(header http.Header, now time.Time) time.Duration {
	var age time.Duration
	if n, ok := parseDelta(strings.TrimSpace(header.Get("Age"))); ok {
		age = time.Duration(n) * time.Second
	}
	if d, err := http.ParseTime(header.Get("Date")); err == nil {
		age = max(age, now.Sub(d))
	}
	return age
}

// hopByHop are the header fields that describe one connection, not the
// response, and so are not stored (RFC 9110 section 7.6.1); Age is
// recomputed on each hit.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Age"}

func storedHeader(h http.Header) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for _, f := range out.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			out.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopByHop {
		out.Del(name)
	}
	return out
}

// touch marks e most recently used.
func (c *Cache) touch(e *Entry) {
	if c.head == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}

// remove drops e from its slot and the recency list.
func (c *Cache) remove(e *Entry) {
	vs := c.slots[e.slot]
	for i, v := range vs {
		if v == e {
			vs = append(vs[:i], vs[i+1:]...)
			break
		}
	}
	if len(vs) == 0 {
		delete(c.slots, e.slot)
	} else {
		c.slots[e.slot] = vs
	}
	c.unlink(e)
	c.bytes -= e.size
	c.n--
}

func (c *Cache) unlink(e *Entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache) pushFront(e *Entry) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	} else {
		c.tail = e
	}
	c.head = e
}
