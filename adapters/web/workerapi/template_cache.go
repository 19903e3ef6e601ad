package workerapi

import (
	"container/list"
	"sync"
	"time"
)

// Template cache bounds (contract §8.2).
const (
	DefaultTemplateCacheTTL  = 300 * time.Second
	DefaultTemplateCacheSize = 1000
)

// cachedTemplate is one resolved template response kept by the cache.
type cachedTemplate struct {
	key      string
	value    TemplateResponse
	stored   time.Time
	accesses uint64
}

// templateCache is an LRU cache with a TTL: a Get past the TTL is a miss
// and evicts the entry; Maintain evicts every expired entry; adding beyond
// capacity evicts the least recently used one. Counters feed CacheStats.
type templateCache struct {
	mu        sync.Mutex
	cap       int
	ttl       time.Duration
	now       func() time.Time
	order     *list.List // front = most recently used
	entries   map[string]*list.Element
	hits      uint64
	misses    uint64
	evictions uint64
}

func newTemplateCache(capacity int, ttl time.Duration, now func() time.Time) *templateCache {
	return &templateCache{cap: capacity, ttl: ttl, now: now, order: list.New(), entries: map[string]*list.Element{}}
}

// Get returns a copy of the entry and bumps its access count and recency.
func (c *templateCache) Get(key string) (cachedTemplate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		c.misses++
		return cachedTemplate{}, false
	}
	e := el.Value.(*cachedTemplate)
	if c.expired(e) {
		c.remove(el)
		c.evictions++
		c.misses++
		return cachedTemplate{}, false
	}
	c.hits++
	e.accesses++
	c.order.MoveToFront(el)
	return *e, true
}

// Put stores (or replaces) key, evicting the least recently used entry
// when full.
func (c *templateCache) Put(key string, v TemplateResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	for c.order.Len() >= c.cap {
		c.remove(c.order.Back())
		c.evictions++
	}
	c.entries[key] = c.order.PushFront(&cachedTemplate{key: key, value: v, stored: c.now()})
}

// Clear drops every entry (not counted as evictions: nothing aged out).
func (c *templateCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.order.Init()
	c.entries = map[string]*list.Element{}
}

// Maintain evicts expired entries and returns how many.
func (c *templateCache) Maintain() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for el := c.order.Back(); el != nil; {
		prev := el.Prev()
		if c.expired(el.Value.(*cachedTemplate)) {
			c.remove(el)
			n++
		}
		el = prev
	}
	c.evictions += uint64(n)
	return n
}

// Stats reports counters and the age and access profile of the entries.
func (c *templateCache) Stats(namespaces []string) CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := CacheStats{TotalCached: uint64(c.order.Len()), CacheHits: c.hits, CacheMisses: c.misses,
		CacheEvictions: c.evictions, SupportedNamespaces: namespaces}
	var accesses uint64
	now := c.now()
	for el := c.order.Front(); el != nil; el = el.Next() {
		e := el.Value.(*cachedTemplate)
		accesses += e.accesses
		if age := now.Sub(e.stored); age > 0 && uint64(age/time.Second) > st.OldestEntryAgeSeconds {
			st.OldestEntryAgeSeconds = uint64(age / time.Second)
		}
	}
	if n := c.order.Len(); n > 0 {
		st.AverageAccessCount = float64(accesses) / float64(n)
	}
	return st
}

func (c *templateCache) expired(e *cachedTemplate) bool { return c.now().Sub(e.stored) >= c.ttl }

func (c *templateCache) remove(el *list.Element) {
	c.order.Remove(el)
	delete(c.entries, el.Value.(*cachedTemplate).key)
}
