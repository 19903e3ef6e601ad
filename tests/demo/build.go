package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// progressEvery is how often the build reports progress. A first build on
// an empty Go build cache compiles a few hundred packages for a minute or
// two; without these lines the demo would look hung.
const progressEvery = 5 * time.Second

// build runs `go build -v` for pkgs into binDir and reports progress while
// it runs: every progressEvery the number of packages compiled so far and
// the latest one. `go build -v` names a package only when it is compiled,
// not when it comes from the build cache, so a warm cache shows "0".
func (d *demo) build(ctx context.Context, binDir string, pkgs ...string) error {
	fmt.Fprintln(d.out, "    compiling the three binaries and their dependencies: the first run (empty Go build")
	fmt.Fprintln(d.out, "    cache) takes a minute or two, later runs a few seconds")
	args := append([]string{"build", "-v", "-trimpath", "-o", binDir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = d.root
	iw := &indentWriter{w: d.out}
	cmd.Stdout = iw
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	p := &buildProgress{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.consume(stderr, iw)
	}()
	ticker := time.NewTicker(progressEvery)
	defer ticker.Stop()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-ticker.C:
			n, last := p.snapshot()
			fmt.Fprintf(d.out, "    … %s: %d packages compiled, latest %s\n", time.Since(start).Round(time.Second), n, orDash(last))
		}
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	n, _ := p.snapshot()
	fmt.Fprintf(d.out, "    ok (%s, %d packages compiled, the rest from the build cache)\n", time.Since(start).Round(100*time.Millisecond), n)
	return nil
}

// buildProgress counts the package lines of `go build -v`.
type buildProgress struct {
	mu    sync.Mutex
	count int
	last  string
}

// consume reads the build's stderr: a line that is a bare import path is a
// compiled package; anything else (a compiler error, a download notice) is
// passed through to w so the user sees it.
func (p *buildProgress) consume(r io.Reader, w io.Writer) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if isPackageLine(line) {
			p.mu.Lock()
			p.count++
			p.last = line
			p.mu.Unlock()
			continue
		}
		_, _ = fmt.Fprintln(w, line)
	}
}

func (p *buildProgress) snapshot() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count, p.last
}

// isPackageLine tells an import path ("github.com/lib/pq", "net/http") from
// other output, which always has a space, a colon or a leading '#'.
func isPackageLine(line string) bool {
	return line != "" && !strings.ContainsAny(line, " \t:#")
}
