#!/usr/bin/env bash
# Runs SkyTrail's whole test suite: the server module and the sdk module.
# Tests start their own servers on 127.0.0.1 and clean up after themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
go vet ./...
go test -count=1 -timeout 30m ./...
(cd sdk && go vet ./... && go test -count=1 -timeout 10m ./...)
