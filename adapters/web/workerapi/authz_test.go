package workerapi

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
)

func jwtKit(t *testing.T) (middleware.TokenVerifier, func(perms, namespaces []string) string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	v, err := middleware.NewJWTVerifier(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "tasker-core", "tasker-api")
	require.NoError(t, err)
	return v, func(perms, namespaces []string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "t", "iss": "tasker-core", "aud": "tasker-api",
			"exp": time.Now().Add(time.Hour).Unix(), "permissions": perms, "worker_namespaces": namespaces}).SignedString(key)
		require.NoError(t, err)
		return s
	}
}

// TestAuthMatrixWorker is issue 13 risk 6 on the worker: with
// authentication enabled every route but /health* and /metrics needs a
// token, and a JWT needs the route's permission. Prints the table.
func TestAuthMatrixWorker(t *testing.T) {
	t.Parallel()
	v, mint := jwtKit(t)
	e := setup(t, func(c *Config) { c.AuthEnabled, c.Tokens, c.Verifier = true, []string{"static-token"}, v })
	routes := e.srv.Engine().Routes()
	sort.Slice(routes, func(i, j int) bool { return routes[i].Path+routes[i].Method < routes[j].Path+routes[j].Method })
	var rows []string
	for _, r := range routes {
		key := r.Method + " " + strings.NewReplacer(":ns", "{ns}", ":name", "{name}", ":version", "{version}").Replace(r.Path)
		perm, listed := RoutePermissions[key]
		if !listed {
			perm = middleware.PermissionAll
		}
		path := concretePath(r.Path)
		call := func(tok string) int {
			if tok == "" {
				return e.do(t, r.Method, path).code
			}
			return e.do(t, r.Method, path, "Authorization", "Bearer "+tok).code
		}
		none, wrong, static := call(""), call("wrong-token"), call("static-token")
		lacking, right := -1, call(mint([]string{perm}, nil))
		if perm != "" {
			lacking = call(mint([]string{"unrelated:perm"}, nil))
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d |", key, perm, none, wrong, lacking, right, static))
		if !middleware.Protected([]string{"*"})(key) {
			require.Equal(t, http.StatusOK, none, key)
			continue
		}
		require.Equal(t, http.StatusUnauthorized, none, key)
		require.Equal(t, http.StatusUnauthorized, wrong, key)
		if perm != "" {
			require.Equal(t, http.StatusForbidden, lacking, key)
		}
		require.NotContains(t, []int{401, 403}, right, key)
		require.NotContains(t, []int{401, 403}, static, key)
	}
	t.Logf("worker, authentication enabled (-1 = not applicable):\n| route | permission | no token | wrong token | lacking permission | right token | static token |\n|---|---|---|---|---|---|---|\n%s",
		strings.Join(rows, "\n"))
	other := mint([]string{"*"}, []string{"other"})
	require.Equal(t, http.StatusForbidden, e.do(t, http.MethodGet, "/templates/examples/square_chain/1.0.0", "Authorization", "Bearer "+other).code,
		"worker_namespaces restricts template routes")
}
