package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/config"
	"github.com/tasker-systems/tasker-go/internal/testdb"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// TestServeRunsAPIAndLoopsAndStopsCleanly starts serve on a fresh database,
// checks readiness, auth on a protected route and a 404 for an unknown
// template, then cancels and requires a clean return.
func TestServeRunsAPIAndLoopsAndStopsCleanly(t *testing.T) {
	cfg := config.Defaults(config.EnvTest)
	cfg.Database.URL = testdb.URL(t)
	cfg.Orchestration.BindAddress = freePort(t)
	cfg.Orchestration.Auth.Enabled = true
	cfg.Orchestration.Auth.Tokens = []string{"s3cret"}
	cfg.Pgmq.ListenEnabled = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &cfg, zap.NewNop()) }()
	base := "http://" + cfg.Orchestration.BindAddress
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/ready")
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, 20*time.Second, 20*time.Millisecond)

	resp, err := http.Post(base+"/v1/tasks", "application/json",
		strings.NewReader(`{"name":"x","namespace":"examples","version":"1.0.0"}`))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode, "with auth on, POST needs a token by default (issue 13)")

	req, err := http.NewRequest(http.MethodDelete, base+"/v1/tasks/0198f0c2-0000-7000-8000-000000000001", nil)
	require.NoError(t, err)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 404, resp.StatusCode, "authorised, unknown task")

	// The dashboard is served, behind the same auth.
	resp, err = http.Get(base + "/ui/tasks")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 401, resp.StatusCode, "dashboard needs the token when auth is on")
	req, err = http.NewRequest(http.MethodGet, base+"/ui/queues", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Contains(t, string(body), `data-queue="orchestration_step_results"`)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(40 * time.Second):
		t.Fatal("serve did not stop")
	}
}

func TestServeFailsFast(t *testing.T) {
	cfg := config.Defaults(config.EnvTest)
	cfg.Database.URL = "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	require.Error(t, serve(context.Background(), &cfg, zap.NewNop()), "unreachable database")

	cfg = config.Defaults(config.EnvTest)
	cfg.Database.URL = testdb.URL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	cfg.Orchestration.BindAddress = ln.Addr().String()
	require.ErrorContains(t, serve(context.Background(), &cfg, zap.NewNop()), "listen", "address in use")

	cfg.Orchestration.Auth.Enabled = true
	require.ErrorContains(t, serve(context.Background(), &cfg, zap.NewNop()), "auth")

	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	require.ErrorContains(t, serve(context.Background(), &cfg, zap.NewNop()), `OTEL_TRACES_EXPORTER "zipkin"`, "a typo does not silently disable tracing")
}

func TestAuthVerifier(t *testing.T) {
	v, err := authVerifier(config.OrchestrationAuthConfig{})
	require.NoError(t, err)
	require.Nil(t, v, "auth off")

	_, err = authVerifier(config.OrchestrationAuthConfig{Enabled: true, JWTPublicKey: "garbage"})
	require.ErrorContains(t, err, "jwt_public_key")

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	v, err = authVerifier(config.OrchestrationAuthConfig{Enabled: true, Tokens: []string{"t"}, JWTPublicKey: pemKey,
		JWTIssuer: "tasker-core", JWTAudience: "tasker-api"})
	require.NoError(t, err)
	_, err = v.Verify("t")
	require.NoError(t, err)
}

func TestRunServeRejectsBadFlagsAndConfig(t *testing.T) {
	require.Equal(t, 2, run([]string{"serve", "--no-such-flag"}))
	t.Setenv("DATABASE_URL", "")
	t.Setenv("TASKER_DATABASE__URL", "")
	require.Equal(t, 1, run([]string{"serve", "--config-dir", t.TempDir() + "/missing"}))
}

func TestWithBinaryParameters(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u@h/db":                      "postgres://u@h/db?binary_parameters=yes",
		"postgres://u@h/db?sslmode=disable":      "postgres://u@h/db?sslmode=disable&binary_parameters=yes",
		"host=h dbname=db":                       "host=h dbname=db binary_parameters=yes",
		"postgres://u@h/db?binary_parameters=no": "postgres://u@h/db?binary_parameters=no",
		"postgresql://u@h/db":                    "postgresql://u@h/db?binary_parameters=yes",
	} {
		require.Equal(t, want, withBinaryParameters(in), in)
	}
}
