package webserver_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/webserver"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	srv := webserver.New(http.NotFoundHandler(), webserver.Config{})
	require.Equal(t, webserver.DefaultReadHeaderTimeout, srv.ReadHeaderTimeout)
	require.Equal(t, webserver.DefaultReadTimeout, srv.ReadTimeout)
	require.Equal(t, webserver.DefaultWriteTimeout, srv.WriteTimeout)
	require.Equal(t, webserver.DefaultIdleTimeout, srv.IdleTimeout)
	require.Equal(t, webserver.DefaultMaxHeaderBytes, srv.MaxHeaderBytes)
}

// start serves a handler that reads the whole body, within short limits.
func start(t *testing.T, c webserver.Config) string {
	t.Helper()
	srv := webserver.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		_, _ = w.Write([]byte("ok"))
	}), c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// closedWithin reports whether the server closes conn within d (a read
// returns EOF or a reset rather than timing out on our side).
func closedWithin(conn net.Conn, d time.Duration) bool {
	_ = conn.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		_, err := conn.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errorAs(err, &ne) && ne.Timeout())
	}
}

func errorAs(err error, target *net.Error) bool {
	ne, ok := err.(net.Error)
	if ok {
		*target = ne
	}
	return ok
}

func rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			var n int
			_, _ = fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &n)
			return n
		}
	}
	return -1
}

// TestSlowBodyIsCutByReadTimeout is issue 13 risk 5: a body sent at
// 1 byte/s was held for 45 s and more; the read timeout now closes it.
func TestSlowBodyIsCutByReadTimeout(t *testing.T) {
	t.Parallel()
	addr := start(t, webserver.Config{ReadTimeout: time.Second})
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	_, err = fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	require.NoError(t, err)
	began := time.Now()
	done := make(chan struct{})
	go func() { // one byte every 200 ms, as the attacker did
		defer close(done)
		for range 50 {
			time.Sleep(200 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	require.True(t, closedWithin(conn, 5*time.Second), "the server closed the slow-body connection")
	held := time.Since(began)
	t.Logf("slow body (1 byte / 200 ms) closed after %s with read_timeout 1s", held.Round(10*time.Millisecond))
	require.Less(t, held, 3*time.Second)
	_ = conn.Close()
	<-done
}

// TestIdleAndSlowConnectionsAreClosed opens 1,000 idle keep-alive and
// 1,000 slow-body connections (the attack of issue 13 risk 5) and checks
// the configured timeouts close them all, printing RSS along the way.
func TestIdleAndSlowConnectionsAreClosed(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const n = 1000
	addr := start(t, webserver.Config{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second})
	rss0 := rssKiB(t)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			if i < n { // idle keep-alive: one request, then silence
				_, _ = fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
				_, _ = http.ReadResponse(bufio.NewReader(conn), nil)
			} else { // slow body: headers, one byte, then silence
				_, _ = fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Len(t, conns, 2*n, "all connections opened")
	rss1 := rssKiB(t)
	start := time.Now()
	var closed int
	var cwg sync.WaitGroup
	var cmu sync.Mutex
	for _, c := range conns {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			if closedWithin(c, 6*time.Second) {
				cmu.Lock()
				closed++
				cmu.Unlock()
			}
			_ = c.Close()
		}()
	}
	cwg.Wait()
	debug.FreeOSMemory()
	rss2 := rssKiB(t)
	t.Logf("2,000 connections (1,000 idle keep-alive + 1,000 slow-body): %d closed by the server within %s; RSS %d KiB before, %d KiB with them open, %d KiB after",
		closed, time.Since(start).Round(100*time.Millisecond), rss0, rss1, rss2)
	require.Equal(t, 2*n, closed, "every connection closed by the server's timeouts")
	if raceEnabled {
		return
	}
	require.Less(t, rss1-rss0, 64<<10, "RSS bounded: under 64 MiB more for 2,000 connections (client and server in one process)")
}
