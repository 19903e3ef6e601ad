package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/adapters/postgres"
	"github.com/tasker-systems/tasker-go/domain"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

// registerExampleTemplates registers configs/tasks/examples on url through
// its own short-lived connection, so the service under test starts with
// templates but without any task, named step or dependent system.
func registerExampleTemplates(t *testing.T, url string) []string {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, postgres.PoolConfig{MaxOpenConns: 1})
	require.NoError(t, err)
	defer func() { _ = db.Close() }()
	store := postgres.NewTemplateStore(db)
	var names []string
	for _, tmpl := range testdb.RegisterExampleTemplates(t, "../../configs/tasks/examples", registerWith(store)) {
		names = append(names, tmpl.Name)
	}
	return names
}

// TestServeSmallPoolSurvivesConcurrentFirstPosts is issue 11 item 5: with a
// 2-connection pool (set through the TASKER_DATABASE__POOL__* environment
// rule) and the example templates registered but no task created yet, 64
// concurrent first POST /v1/tasks must all answer 200 and readiness must
// stay 200 during and after the burst. A transaction that waits for a second
// pool connection (to prepare a statement) while holding one wedges such a
// pool for good: before the fix either the POSTs timed out (task creation
// with new named steps) or they answered and the trigger enqueues that
// follow them wedged the pool, so readiness went 503.
func TestServeSmallPoolSurvivesConcurrentFirstPosts(t *testing.T) {
	url := testdb.URL(t)
	names := registerExampleTemplates(t, url)
	cfg, err := config.Load(config.LoadOptions{ConfigDir: "../../configs/tasker", Environment: config.EnvTest,
		Environ: []string{
			"TASKER_DATABASE__URL=" + url,
			"TASKER_DATABASE__POOL__MAX_OPEN_CONNS=2",
			"TASKER_DATABASE__POOL__MAX_IDLE_CONNS=2",
			"TASKER_ORCHESTRATION__BIND_ADDRESS=" + freePort(t),
		}})
	require.NoError(t, err)
	require.NoError(t, cfg.ValidateOrchestration())
	require.Equal(t, 2, cfg.Database.Pool.MaxOpenConns)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zap.NewNop()) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	}()

	base := "http://" + cfg.Orchestration.BindAddress
	client := &http.Client{Timeout: 15 * time.Second,
		Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}}
	ready := func() (int, string) {
		resp, err := client.Get(base + "/health/ready")
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	require.Eventually(t, func() bool { code, _ := ready(); return code == http.StatusOK },
		20*time.Second, 20*time.Millisecond)

	const posts = 64
	type answer struct {
		code int
		body string
	}
	answers := make([]answer, posts)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range posts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := fmt.Sprintf(`{"name":%q,"namespace":"examples","version":"1.0.0","context":{"even_number":%d}}`,
				names[i%len(names)], 2*(i+1))
			resp, err := client.Post(base+"/v1/tasks", "application/json", strings.NewReader(body))
			if err != nil {
				answers[i] = answer{body: err.Error()}
				return
			}
			defer func() { _ = resp.Body.Close() }()
			b, _ := io.ReadAll(resp.Body)
			answers[i] = answer{code: resp.StatusCode, body: string(b)}
		}()
	}
	// Readiness is probed throughout the burst.
	burstDone := make(chan struct{})
	var probes []answer
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for {
			code, body := ready()
			probes = append(probes, answer{code, body})
			select {
			case <-burstDone:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	began := time.Now()
	close(start)
	wg.Wait()
	close(burstDone)
	<-probed
	t.Logf("%d concurrent first POSTs answered in %v; %d readiness probes during the burst",
		posts, time.Since(began).Round(time.Millisecond), len(probes))

	failed := 0
	for i, a := range answers {
		if a.code != http.StatusOK {
			failed++
			t.Errorf("POST %d: %d %s", i, a.code, a.body)
		}
	}
	require.Zero(t, failed, "%d of %d first POSTs did not answer 200", failed, posts)
	for i, p := range probes {
		require.Equal(t, http.StatusOK, p.code, "readiness probe %d of %d during the burst: %s", i+1, len(probes), p.body)
	}
	// The trigger enqueues of the new tasks run after the POSTs answer; the
	// service must stay ready through them too.
	for i := range 10 {
		code, body := ready()
		require.Equal(t, http.StatusOK, code, "readiness probe %d after the burst: %s", i+1, body)
		time.Sleep(100 * time.Millisecond)
	}
}

// registerWith adapts store to testdb.RegisterExampleTemplates.
func registerWith(store *postgres.TemplateStore) func(domain.TaskTemplate, json.RawMessage) error {
	return func(tmpl domain.TaskTemplate, cfg json.RawMessage) error {
		_, err := store.RegisterTemplate(context.Background(), tmpl, cfg)
		return err
	}
}
