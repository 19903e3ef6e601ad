package middleware_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/tasker-systems/tasker-go/adapters/web/middleware"
)

func writeErr(c *gin.Context, status int, code, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"code": code, "message": msg})
}

func serve(e *gin.Engine, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	return w
}

func engine(mw ...gin.HandlerFunc) *gin.Engine {
	gin.SetMode(gin.TestMode)
	e := gin.New()
	e.Use(mw...)
	return e
}

func TestRequestID(t *testing.T) {
	e := engine(middleware.RequestID())
	e.GET("/", func(c *gin.Context) { c.String(200, middleware.GetRequestID(c)) })
	cases := []struct {
		name, in string
		echoed   bool
	}{
		{"valid echoed", "req-123", true},
		{"absent", "", false},
		{"spaces rejected", "a b", false},
		{"too long rejected", strings.Repeat("x", middleware.MaxRequestIDLength+1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(e, "GET", "/", "", map[string]string{"x-request-id": tc.in})
			got := w.Header().Get("x-request-id")
			require.Equal(t, got, w.Body.String())
			if tc.echoed {
				require.Equal(t, tc.in, got)
				return
			}
			id, err := uuid.Parse(got)
			require.NoError(t, err)
			require.Equal(t, uuid.Version(4), id.Version())
		})
	}
}

func TestTimeoutAnswers408WhenHandlerWroteNothing(t *testing.T) {
	e := engine(middleware.Timeout(10*time.Millisecond, writeErr, "TIMEOUT"))
	e.GET("/slow", func(c *gin.Context) {
		<-c.Request.Context().Done()
		require.True(t, middleware.IsTimeout(c.Request.Context().Err()))
	})
	e.GET("/fast", func(c *gin.Context) { c.String(200, "ok") })
	w := serve(e, "GET", "/slow", "", nil)
	require.Equal(t, http.StatusRequestTimeout, w.Code)
	require.Contains(t, w.Body.String(), "TIMEOUT")
	require.Equal(t, 200, serve(e, "GET", "/fast", "", nil).Code)
}

func TestBodyLimit(t *testing.T) {
	e := engine(middleware.BodyLimit(8, writeErr, "TOO_LARGE"))
	e.POST("/", func(c *gin.Context) {
		buf := make([]byte, 64)
		_, err := c.Request.Body.Read(buf)
		for err == nil {
			_, err = c.Request.Body.Read(buf)
		}
		if middleware.IsBodyTooLarge(err) {
			writeErr(c, 413, "TOO_LARGE", "read past limit")
			return
		}
		c.String(200, "ok")
	})
	require.Equal(t, 200, serve(e, "POST", "/", "small", nil).Code)
	require.Equal(t, 413, serve(e, "POST", "/", strings.Repeat("x", 100), nil).Code, "Content-Length over limit")
	req := httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", 100)))
	req.ContentLength = -1 // chunked: only the read notices
	w := httptest.NewRecorder()
	e.ServeHTTP(w, req)
	require.Equal(t, 413, w.Code)
	require.Contains(t, w.Body.String(), "read past limit")
}

func TestCORS(t *testing.T) {
	e := engine(middleware.CORS([]string{"https://ok.example"}))
	e.GET("/", func(c *gin.Context) { c.String(200, "ok") })
	w := serve(e, "OPTIONS", "/", "", map[string]string{"Origin": "https://ok.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization"})
	require.Equal(t, http.StatusNoContent, w.Code)
	require.Equal(t, "https://ok.example", w.Header().Get("Access-Control-Allow-Origin"))
	require.Equal(t, "authorization", w.Header().Get("Access-Control-Allow-Headers"))
	w = serve(e, "GET", "/", "", map[string]string{"Origin": "https://evil.example"})
	require.Equal(t, 200, w.Code)
	require.Empty(t, w.Header().Get("Access-Control-Allow-Origin"), "an origin not on the list gets no CORS headers")
	none := engine(middleware.CORS(nil))
	none.GET("/", func(c *gin.Context) { c.String(200, "ok") })
	require.Empty(t, serve(none, "GET", "/", "", map[string]string{"Origin": "https://ok.example"}).Header().Get("Access-Control-Allow-Origin"))
}

// TestRequireJSON is issue 13: text/plain and form bodies (which a browser
// sends cross-site without a preflight) are 415.
func TestRequireJSON(t *testing.T) {
	e := engine(middleware.RequireJSON(writeErr, "UNSUPPORTED_MEDIA_TYPE"))
	e.POST("/", func(c *gin.Context) { c.String(200, "ok") })
	for ct, want := range map[string]int{"application/json": 200, "application/json; charset=utf-8": 200,
		"application/merge-patch+json": 200, "text/plain": 415, "application/x-www-form-urlencoded": 415, "": 415, "multipart/form-data; boundary=x": 415} {
		require.Equal(t, want, serve(e, "POST", "/", `{"a":1}`, map[string]string{"Content-Type": ct}).Code, ct)
	}
	require.Equal(t, 200, serve(e, "POST", "/", "", nil).Code, "no body, no check")
}

func TestRecoveryAndAccessLog(t *testing.T) {
	e := engine(middleware.RequestID(), middleware.Recovery(zap.NewNop(), writeErr, "INTERNAL_ERROR"), middleware.AccessLog(zap.NewNop()))
	e.GET("/panic", func(*gin.Context) { panic("boom") })
	e.GET("/late", func(c *gin.Context) {
		c.String(200, "partial")
		panic("after write")
	})
	w := serve(e, "GET", "/panic", "", nil)
	require.Equal(t, 500, w.Code)
	require.Contains(t, w.Body.String(), "INTERNAL_ERROR")
	require.Equal(t, 200, serve(e, "GET", "/late", "", nil).Code, "a started response is left alone")
	require.Equal(t, 404, serve(e, "GET", "/missing", "", nil).Code)
}

func rsaKey(t *testing.T) (*rsa.PrivateKey, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	require.NoError(t, err)
	return key, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func token(t *testing.T, key *rsa.PrivateKey, method jwt.SigningMethod, claims jwt.MapClaims) string {
	var signKey any = key
	if method == jwt.SigningMethodHS256 {
		signKey = []byte("secret")
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(signKey)
	require.NoError(t, err)
	return s
}

func TestAuth(t *testing.T) {
	key, pub := rsaKey(t)
	v, err := middleware.NewJWTVerifier(pub, "tasker-core", "tasker-api")
	require.NoError(t, err)
	_, err = middleware.NewJWTVerifier([]byte("not a key"), "i", "a")
	require.Error(t, err)
	verifier := middleware.AnyVerifier{middleware.StaticTokens{"static-secret"}, v}
	e := engine(middleware.Auth(verifier, func(k string) bool { return k == "DELETE /v1/tasks/{task_uuid}" }, writeErr, "AUTHENTICATION_FAILED"))
	e.DELETE("/v1/tasks/:task_uuid", func(c *gin.Context) {
		claims, ok := middleware.GetClaims(c)
		require.True(t, ok)
		c.String(200, claims.Subject)
	})
	e.GET("/v1/tasks/:task_uuid", func(c *gin.Context) {
		_, ok := middleware.GetClaims(c)
		require.False(t, ok)
		c.String(200, "open")
	})
	valid := jwt.MapClaims{"sub": "ops", "iss": "tasker-core", "aud": "tasker-api", "exp": time.Now().Add(time.Hour).Unix(),
		"iat": time.Now().Unix(), "permissions": []string{"tasks:cancel"}, "worker_namespaces": []string{"examples"}}
	expired := jwt.MapClaims{"sub": "ops", "iss": "tasker-core", "aud": "tasker-api", "exp": time.Now().Add(-time.Hour).Unix()}
	wrongAud := jwt.MapClaims{"sub": "ops", "iss": "tasker-core", "aud": "other", "exp": time.Now().Add(time.Hour).Unix()}
	noExp := jwt.MapClaims{"sub": "ops", "iss": "tasker-core", "aud": "tasker-api"}
	cases := []struct {
		name, header string
		status       int
		msg          string
	}{
		{"missing header", "", 401, "Missing authorization header"},
		{"wrong scheme", "Basic abc", 401, "Authorization header must use Bearer scheme"},
		{"empty token", "Bearer  ", 401, "Empty Bearer token"},
		{"garbage token", "Bearer abc.def.ghi", 401, "Invalid or expired token"},
		{"expired", "Bearer " + token(t, key, jwt.SigningMethodRS256, expired), 401, "Invalid or expired token"},
		{"wrong audience", "Bearer " + token(t, key, jwt.SigningMethodRS256, wrongAud), 401, "Invalid or expired token"},
		{"no exp", "Bearer " + token(t, key, jwt.SigningMethodRS256, noExp), 401, "Invalid or expired token"},
		{"HS256 rejected", "Bearer " + token(t, key, jwt.SigningMethodHS256, valid), 401, "Invalid or expired token"},
		{"valid RS256", "Bearer " + token(t, key, jwt.SigningMethodRS256, valid), 200, "ops"},
		{"static token", "Bearer static-secret", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(e, "DELETE", "/v1/tasks/abc", "", map[string]string{"Authorization": tc.header})
			require.Equal(t, tc.status, w.Code, w.Body.String())
			require.Contains(t, w.Body.String(), tc.msg)
		})
	}
	require.Equal(t, 200, serve(e, "GET", "/v1/tasks/abc", "", nil).Code, "unprotected route")
	_, err = middleware.AnyVerifier{}.Verify("x")
	require.Error(t, err)
}

// TestInFlightLimitSheds503 is issue 13 risk 5: beyond the cap a request
// gets 503 with Retry-After at once; probes are never shed.
func TestInFlightLimitSheds503(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	e := engine(middleware.InFlightLimit(2, middleware.IsProbePath, writeErr, "SERVICE_UNAVAILABLE"))
	e.GET("/slow", func(c *gin.Context) {
		entered <- struct{}{}
		<-release
		c.String(200, "ok")
	})
	e.GET("/health", func(c *gin.Context) { c.String(200, "ok") })
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			require.Equal(t, 200, serve(e, "GET", "/slow", "", nil).Code)
		}()
	}
	<-entered
	<-entered
	w := serve(e, "GET", "/slow", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, middleware.RetryAfterSeconds, w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), "in-flight request limit")
	t.Logf("3rd request with max_in_flight_requests 2 → %d Retry-After=%q %s", w.Code, w.Header().Get("Retry-After"), w.Body.String())
	require.Equal(t, 200, serve(e, "GET", "/health", "", nil).Code, "probes are not shed")
	close(release)
	wg.Wait()
	require.Equal(t, 200, serve(e, "GET", "/health", "", nil).Code)
	off := engine(middleware.InFlightLimit(0, nil, writeErr, "X"))
	off.GET("/", func(c *gin.Context) { c.String(200, "ok") })
	require.Equal(t, 200, serve(off, "GET", "/", "", nil).Code)
}
