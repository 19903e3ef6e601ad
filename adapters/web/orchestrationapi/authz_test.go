package orchestrationapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
	web "github.com/tasker-systems/tasker-go/adapters/web/orchestrationapi"
	"github.com/tasker-systems/tasker-go/ports"
	"github.com/tasker-systems/tasker-go/ports/mocks"
)

func jwtKit(t *testing.T) (middleware.TokenVerifier, func(perms, namespaces []string) string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	v, err := middleware.NewJWTVerifier(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), "tasker-core", "tasker-api")
	require.NoError(t, err)
	mint := func(perms, namespaces []string) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "t", "iss": "tasker-core", "aud": "tasker-api",
			"exp": time.Now().Add(time.Hour).Unix(), "permissions": perms, "worker_namespaces": namespaces}).SignedString(key)
		require.NoError(t, err)
		return s
	}
	return v, mint
}

// TestAuthMatrixDefaultConfig is issue 13 risk 6: with auth enabled and the
// default protected_routes, every route but the probes and /metrics needs a
// token (before: only DELETE and PATCH did), and the JWT permission each
// route names is enforced. It prints the route × credential table.
func TestAuthMatrixDefaultConfig(t *testing.T) {
	t.Parallel()
	v, mint := jwtKit(t)
	q := mocks.NewTaskQuery(t)
	q.On("GetTask", mock.Anything, mock.Anything).Return(ports.TaskView{}, ports.ErrNotFound).Maybe()
	q.On("GetStep", mock.Anything, mock.Anything, mock.Anything).Return(ports.StepView{}, ports.ErrNotFound).Maybe()
	q.On("ListSteps", mock.Anything, mock.Anything).Return(nil, ports.ErrNotFound).Maybe()
	q.On("ListTasks", mock.Anything, mock.Anything).Return(ports.TaskPage{}, nil).Maybe()
	s := web.New(web.Config{Verifier: v}, web.Deps{Tasks: &fakeTasks{running: true}, Query: q, Templates: fakeTemplates{},
		DB: pingFunc(func(context.Context) error { return nil }), Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
			_, _ = w.Write([]byte("# metrics\n"))
		})})
	h := s.Handler() // unwrapped: the matrix is about auth, the OpenAPI conformance has its own tests
	task, step := uuid.NewString(), uuid.NewString()
	var rows []string
	routes := s.Handler().(*gin.Engine).Routes()
	sort.Slice(routes, func(i, j int) bool { return routes[i].Path+routes[i].Method < routes[j].Path+routes[j].Method })
	for _, r := range routes {
		path := strings.NewReplacer(":task_uuid", task, ":step_uuid", step, ":entry_uuid", uuid.NewString(),
			":namespace", "examples", ":name", "linear_workflow", ":version", "1.0.0", "*filepath", "x").Replace(r.Path)
		routeKey := r.Method + " " + strings.NewReplacer(":task_uuid", "{task_uuid}", ":step_uuid", "{step_uuid}", ":entry_uuid", "{entry_uuid}",
			":namespace", "{namespace}", ":name", "{name}", ":version", "{version}").Replace(r.Path)
		perm, listed := web.RoutePermissions[routeKey]
		if !listed {
			perm = "*"
		}
		call := func(token string) int {
			body := ""
			if r.Method == http.MethodPost || r.Method == http.MethodPatch {
				body = "{}"
			}
			req := httptest.NewRequest(r.Method, path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			return w.Code
		}
		none, wrong := call(""), call("not-a-token")
		lacking, right := -1, -1
		if perm != "" {
			lacking = call(mint([]string{"unrelated:perm"}, nil))
		}
		if perm == "*" {
			right = call(mint([]string{"*"}, nil))
		} else {
			right = call(mint([]string{perm}, nil))
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %d | %d | %d | %d |", routeKey, perm, none, wrong, lacking, right))
		if !middleware.Protected(web.DefaultProtectedRoutes())(routeKey) {
			require.NotEqual(t, http.StatusUnauthorized, none, "%s is a probe: open", routeKey)
			continue
		}
		require.Equal(t, http.StatusUnauthorized, none, routeKey)
		require.Equal(t, http.StatusUnauthorized, wrong, routeKey)
		if perm != "" {
			require.Equal(t, http.StatusForbidden, lacking, routeKey)
		}
		require.NotContains(t, []int{http.StatusUnauthorized, http.StatusForbidden}, right, routeKey)
	}
	t.Logf("orchestration, auth enabled, default protected_routes (-1 = not applicable):\n| route | permission | no token | wrong token | lacking permission | right token |\n|---|---|---|---|---|---|\n%s",
		strings.Join(rows, "\n"))
}

// TestWorkerNamespacesEnforced: a token restricted to namespace "other"
// cannot create tasks in, or read templates of, "examples".
func TestWorkerNamespacesEnforced(t *testing.T) {
	t.Parallel()
	v, mint := jwtKit(t)
	u := unitSetup(t, web.Config{Verifier: v}, &fakeTasks{}, fakeTemplates{}, nil)
	do := func(method, path, body, tok string) int {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		u.h.ServeHTTP(w, req)
		return w.Code
	}
	other := mint([]string{"*"}, []string{"other"})
	require.Equal(t, http.StatusForbidden, do("POST", "/v1/tasks", validCreate, other))
	require.Equal(t, http.StatusForbidden, do("GET", "/v1/templates/examples/linear_workflow/1.0.0", "", other))
	require.Equal(t, http.StatusForbidden, do("GET", "/v1/tasks", "", other), "a restricted token must name its namespace")
	require.Equal(t, http.StatusOK, do("POST", "/v1/tasks", validCreate, mint([]string{"tasks:create"}, []string{"examples"})))
	task := uuid.New()
	u.query.On("GetTask", mock.Anything, task).Return(ports.TaskView{TaskUUID: task, Namespace: "examples"}, nil)
	for _, r := range [][2]string{{"GET", "/v1/tasks/" + task.String()}, {"DELETE", "/v1/tasks/" + task.String()},
		{"GET", "/v1/tasks/" + task.String() + "/workflow_steps"}, {"GET", "/v1/tasks/" + task.String() + "/workflow_steps/" + uuid.NewString()}} {
		require.Equal(t, http.StatusForbidden, do(r[0], r[1], "", other), "%s %s of a task in another namespace", r[0], r[1])
	}
	require.Equal(t, http.StatusOK, do("POST", "/v1/tasks", validCreate, mint([]string{"tasks:*"}, nil)), "unrestricted, resource wildcard")
}
