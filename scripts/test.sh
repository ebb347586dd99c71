#!/usr/bin/env bash
# Runs SkyTrail's whole test suite: the server module (with the UI's browser
# tests) and the sdk module. Tests start their own servers on 127.0.0.1 and
# clean up after themselves. The browser tests need Debian's chromium
# (apt-get install chromium) and Node.js; without them they are skipped,
# except under CI=true, where they fail.
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v npm >/dev/null && [ ! -d internal/ui/testdata/browser/node_modules ]; then
  (cd internal/ui/testdata/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
go vet ./...
go test -count=1 -timeout 30m ./...
(cd sdk && go vet ./... && go test -count=1 -timeout 10m ./...)
