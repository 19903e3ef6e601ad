package middleware

import (
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
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

// ErrNoVerifier is returned by configuration code that enables auth without a key.
var ErrNoVerifier = errors.New("auth enabled but no token verifier configured")

// StaticTokens accepts a fixed set of opaque bearer tokens (config
// orchestration.auth.tokens), compared in constant time.
type StaticTokens []string

// Verify implements TokenVerifier.
func (s StaticTokens) Verify(token string) (*Claims, error) {
	for _, t := range s {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			return &Claims{}, nil
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
