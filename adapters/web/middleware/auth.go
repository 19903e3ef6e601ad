package middleware

import (
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
)

// Claims are the JWT claims of an API caller (contract §7.1).
type Claims struct {
	WorkerNamespaces []string `json:"worker_namespaces"`
	Permissions      []string `json:"permissions"`
	jwt.RegisteredClaims
}

// TokenVerifier checks a bearer token and returns its claims.
type TokenVerifier interface {
	Verify(token string) (*Claims, error)
}

// JWTVerifier verifies RS256 tokens with one public key, issuer and audience.
type JWTVerifier struct {
	key      *rsa.PublicKey
	issuer   string
	audience string
	now      func() time.Time
}

// NewJWTVerifier parses a PEM RSA public key. Only RS256 is accepted, so a
// token cannot pick a weaker algorithm (or "none") for itself.
func NewJWTVerifier(publicKeyPEM []byte, issuer, audience string) (*JWTVerifier, error) {
	key, err := jwt.ParseRSAPublicKeyFromPEM(publicKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse jwt public key: %w", err)
	}
	return &JWTVerifier{key: key, issuer: issuer, audience: audience, now: time.Now}, nil
}

// Verify implements TokenVerifier: signature, iss, aud and exp (required).
func (v *JWTVerifier) Verify(token string) (*Claims, error) {
	claims := &Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return v.key, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(v.issuer), jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(v.now))
	if err != nil {
		return nil, fmt.Errorf("verify token: %w", err)
	}
	return claims, nil
}

// claimsKey is the gin context key of verified claims.
const claimsKey = "auth_claims"

// GetClaims returns the claims Auth verified for this request, if any.
func GetClaims(c *gin.Context) (*Claims, bool) {
	v, ok := c.Get(claimsKey)
	if !ok {
		return nil, false
	}
	cl, ok := v.(*Claims)
	return cl, ok
}

var ginParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// RouteKey is "<METHOD> <path template>" with {param} placeholders, the form
// of the protected-route configuration (e.g. "DELETE /v1/tasks/{task_uuid}").
func RouteKey(c *gin.Context) string {
	return c.Request.Method + " " + ginParam.ReplaceAllString(c.FullPath(), "{$1}")
}

// Auth requires a valid bearer token on the routes for which protected(key)
// is true (key from RouteKey); other routes pass untouched. Failures are 401
// with code and the contract's messages.
func Auth(v TokenVerifier, protected func(routeKey string) bool, write ErrorWriter, code string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !protected(RouteKey(c)) {
			c.Next()
			return
		}
		token, problem := bearerToken(c.GetHeader("Authorization"))
		if problem != "" {
			write(c, http.StatusUnauthorized, code, problem)
			return
		}
		claims, err := v.Verify(token)
		if err != nil || claims == nil {
			write(c, http.StatusUnauthorized, code, "Invalid or expired token")
			return
		}
		c.Set(claimsKey, claims)
		c.Next()
	}
}

// PermissionAll in a token's permissions grants every permission; static
// tokens carry it, since whoever configured them is an operator.
const PermissionAll = "*"

// HasPermission reports whether the claims grant perm: listed exactly, or
// by "*" or "<resource>:*" (e.g. "tasks:*" grants "tasks:create").
func (c *Claims) HasPermission(perm string) bool {
	resource, _, _ := strings.Cut(perm, ":")
	for _, p := range c.Permissions {
		if p == PermissionAll || p == perm || p == resource+":*" {
			return true
		}
	}
	return false
}

// AllowsNamespace reports whether the claims may act on namespace ns: a
// token without worker_namespaces (or with "*") is not restricted.
func (c *Claims) AllowsNamespace(ns string) bool {
	return len(c.WorkerNamespaces) == 0 || slices.Contains(c.WorkerNamespaces, "*") || slices.Contains(c.WorkerNamespaces, ns)
}

// NamespaceRestricted reports whether the claims limit the namespaces.
func (c *Claims) NamespaceRestricted() bool {
	return len(c.WorkerNamespaces) > 0 && !slices.Contains(c.WorkerNamespaces, "*")
}

// NamespaceAllowed reports whether this request may act on namespace ns:
// true when no token was verified (auth off or the route is open).
func NamespaceAllowed(c *gin.Context, ns string) bool {
	cl, ok := GetClaims(c)
	return !ok || cl.AllowsNamespace(ns)
}

// Authorize enforces the permissions table after Auth: a request with
// verified claims needs the permission perms[RouteKey] names ("" = any
// valid token); a route
// missing from the table needs "*" (deny by default, so a new route is
// never open to every token by accident). Failures are 403 with code.
func Authorize(perms map[string]string, write ErrorWriter, code string) gin.HandlerFunc {
	return func(c *gin.Context) {
		cl, ok := GetClaims(c)
		if !ok {
			c.Next()
			return
		}
		need, listed := perms[RouteKey(c)]
		if !listed {
			need = PermissionAll
		}
		if need != "" && !cl.HasPermission(need) {
			write(c, http.StatusForbidden, code, "Token lacks the permission "+need)
			return
		}
		c.Next()
	}
}

// Protected returns the protected(routeKey) function of Auth for a list of
// "<METHOD> <path template>" entries, where "*" means every route. Probes
// and /metrics are never protected: orchestrators and scrapers call them
// without credentials.
func Protected(routes []string) func(routeKey string) bool {
	all := slices.Contains(routes, "*")
	set := make(map[string]bool, len(routes))
	for _, r := range routes {
		set[r] = true
	}
	return func(key string) bool {
		_, path, _ := strings.Cut(key, " ")
		if IsProbePath(path) || path == "/metrics" {
			return false
		}
		return all || set[key]
	}
}

// ErrNoVerifier is returned by configuration code that enables auth without a key.
var ErrNoVerifier = errors.New("auth enabled but no token verifier configured")

// StaticTokens accepts a fixed set of opaque bearer tokens (config
// orchestration.auth.tokens), compared in constant time.
type StaticTokens []string

// Verify implements TokenVerifier.
func (s StaticTokens) Verify(token string) (*Claims, error) {
	for _, t := range s {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return &Claims{Permissions: []string{PermissionAll}}, nil
		}
	}
	return nil, errors.New("unknown token")
}

// AnyVerifier accepts a token that any of its verifiers accepts.
type AnyVerifier []TokenVerifier

// Verify implements TokenVerifier.
func (a AnyVerifier) Verify(token string) (*Claims, error) {
	err := errors.New("no verifier configured")
	for _, v := range a {
		c, e := v.Verify(token)
		if e == nil {
			return c, nil
		}
		err = e
	}
	return nil, err
}
