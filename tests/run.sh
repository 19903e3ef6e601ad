#!/usr/bin/env bash
# The project's test command (README "Run the tests"). It installs the pinned
# tools it needs, then checks formatting, vet, staticcheck, mock freshness and runs the
# whole suite with the race detector against real PostgreSQL.
#
# Database: TASKER_TEST_DATABASE_URL (default: the local server at
# 127.0.0.1:5432, database "test"). Set CI=true to turn "no database" into a
# failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

MOCKERY_VERSION=v2.53.5
GOTESTSUM_VERSION=v1.13.0
STATICCHECK_VERSION=v0.8.2

export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"
export TASKER_TEST_DATABASE_URL="${TASKER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"

step() { printf '\n== %s\n' "$*"; }

step "tools (pinned)"
have_version() { command -v "$1" >/dev/null 2>&1 && go version -m "$(command -v "$1")" 2>/dev/null | grep -q "$2"; }
have_version mockery "$MOCKERY_VERSION" || go install "github.com/vektra/mockery/v2@${MOCKERY_VERSION}"
have_version gotestsum "$GOTESTSUM_VERSION" || go install "gotest.tools/gotestsum@${GOTESTSUM_VERSION}"
have_version staticcheck "$STATICCHECK_VERSION" || go install "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change:"; echo "$unformatted"; exit 1; fi
echo ok

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...
echo ok

step "mocks fresh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r ports/mocks "$tmp/before"
mockery >/dev/null 2>&1
if ! diff -r "$tmp/before" ports/mocks >/dev/null; then
  echo "ports/mocks is stale: run 'task mocks' and commit the result"; diff -r "$tmp/before" ports/mocks | head -40; exit 1
fi
echo ok

step "go test -race -shuffle=on (with coverage)"
mkdir -p .cover
gotestsum --format pkgname-and-test-fails -- -race -shuffle=on -count=1 -timeout 15m \
  -covermode=atomic -coverprofile=.cover/coverage.out ./...

step "coverage (mocks and cmd/*/main.go excluded)"
go run ./internal/covergate/cmd/covergate -profile .cover/coverage.out \
  -min-domain "${COVER_MIN_DOMAIN:-90}" -min-app "${COVER_MIN_APP:-90}" -min-total "${COVER_MIN_TOTAL:-80}"
