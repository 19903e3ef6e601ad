package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// service is one started binary whose output goes to a log file.
type service struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	done    chan struct{}
	waitErr error
}

// startService runs bin in dir (the checkout: the worker finds
// configs/tasks relative to it) with env added to this process's environment.
func startService(name, dir, bin string, env []string, logPath string, args ...string) (*service, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	s := &service{name: name, cmd: cmd, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		_ = f.Close()
		close(s.done)
	}()
	return s, nil
}

func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace; it reports how long the
// shutdown took and the exit error (nil = exit 0).
func (s *service) stop(grace time.Duration) (time.Duration, error) {
	if s.exited() {
		return 0, fmt.Errorf("%s had already exited: %v", s.name, s.waitErr)
	}
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return time.Since(start), s.waitErr
	case <-time.After(grace):
		_ = s.cmd.Process.Kill()
		<-s.done
		return time.Since(start), fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", s.name, grace)
	}
}

// tail returns the last n lines of the service's log.
func (s *service) tail(n int) string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// waitReady polls url until it answers 200, the service exits or timeout passes.
func (s *service) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if s.exited() {
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s", s.name, s.waitErr, s.logPath, s.tail(15))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready at %s after %s (last: %s); last lines of %s:\n%s",
		s.name, url, timeout, last, s.logPath, s.tail(15))
}

// freePort returns a loopback address nothing listens on, so the demo never
// collides with a service already using 8080/8081.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}
