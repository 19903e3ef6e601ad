// Package webserver builds the net/http servers of both HTTP APIs with the
// limits that keep slow and idle clients from holding connections and
// memory (issue 13): header, body, write and idle timeouts and a header
// size cap. The in-flight request cap that sheds load with 503 lives in
// the middleware package, because it answers in each API's error shape.
package webserver

import (
	"net/http"
	"time"
)

// Defaults of Config. A request body is at most a few MiB (2 MiB on the
// orchestration), so a client that needs more than 15 s to send one is
// too slow to serve; the write timeout must exceed the request timeout
// (30 s) so a 408 can still be written; idle keep-alive connections are
// closed after 30 s, well before they pile up.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 45 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Config bounds what one connection may hold. Zero values select the
// defaults above.
type Config struct {
	// ReadHeaderTimeout closes a connection whose request headers have not
	// arrived in time (slowloris).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included: a body
	// sent at 1 byte/s no longer holds its connection for minutes.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the request headers to
	// the end of the response; it must exceed the request timeout.
	WriteTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request line and headers.
	MaxHeaderBytes int
}

// WithDefaults returns c with zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return c
}

// New returns an http.Server serving h within the limits of c.
func New(h http.Handler, c Config) *http.Server {
	c = c.WithDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.ReadHeaderTimeout,
		ReadTimeout:       c.ReadTimeout,
		WriteTimeout:      c.WriteTimeout,
		IdleTimeout:       c.IdleTimeout,
		MaxHeaderBytes:    c.MaxHeaderBytes,
	}
}
