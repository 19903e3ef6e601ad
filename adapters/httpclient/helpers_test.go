package httpclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reply is one scripted answer of fakeServer.
type reply struct {
	status int
	body   string
	header map[string]string
	// block makes the handler wait until the client gives up on the request.
	block bool
}

// seen is what fakeServer recorded about one request.
type seen struct {
	at     time.Time
	method string
	path   string
	query  string
	header http.Header
	body   string
}

// fakeServer answers with the scripted replies in order, repeating the last
// one, and records every request.
type fakeServer struct {
	*httptest.Server
	mu      sync.Mutex
	replies []reply
	reqs    []seen
}

func newFakeServer(t *testing.T, replies ...reply) *fakeServer {
	t.Helper()
	f := &fakeServer{replies: replies}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, seen{at: time.Now(), method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
		header: r.Header.Clone(), body: string(body)})
	rep := f.replies[min(len(f.reqs), len(f.replies))-1]
	f.mu.Unlock()
	if rep.block {
		<-r.Context().Done()
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

// script replaces the replies for the following requests.
func (f *fakeServer) script(replies ...reply) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replies = append(make([]reply, len(f.reqs)), replies...)
}

func (f *fakeServer) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

func errBody(code, msg string) string {
	return `{"error":{"code":"` + code + `","message":"` + msg + `"}}`
}

const healthOK = `{"status":"ok","timestamp":"2026-01-01T00:00:00Z"}`

// testConfig is a fast, deterministic configuration: no jitter, 40 ms
// initial backoff doubling, breaker disabled unless a test enables it.
func testConfig(f *fakeServer) Config {
	c := DefaultConfig()
	c.BaseURL = f.URL
	c.HTTPClient = f.Client()
	c.Timeout = 2 * time.Second
	c.MaxRetries = 3
	c.Backoff = BackoffConfig{Initial: 40 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0}
	c.Breaker.Enabled = false
	return c
}

func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

// gaps returns the time between consecutive requests.
func gaps(reqs []seen) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(reqs); i++ {
		out = append(out, reqs[i].at.Sub(reqs[i-1].at))
	}
	return out
}
