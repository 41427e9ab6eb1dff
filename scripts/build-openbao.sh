#!/usr/bin/env bash
# Builds the real OpenBao server from Go modules (no release download), cached by version and commit.
# Prints the binary path on stdout. Rebuilds only when the cached binary is missing.
set -euo pipefail
OPENBAO_VERSION="${OPENBAO_VERSION:-2.6.2}"
OPENBAO_COMMIT="${OPENBAO_COMMIT:-dd9c19c37a878cf4a81b18efb8d6f0599c7da923}"
short="${OPENBAO_COMMIT:0:12}"
cache="${SEALKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealkeeper}/openbao-${OPENBAO_VERSION}-${short}"
bin="$cache/bao"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "build-openbao: Go is not installed (need go >= 1.24 on PATH)" >&2; exit 1; }
mkdir -p "$cache"
# One build at a time: a second caller waits for the first and then reuses its binary.
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
work="$cache/src"
rm -rf "$work"; mkdir -p "$work"
cd "$work"
cat > main.go <<'GO'
// Wrapper module: builds the real OpenBao server from its published Go module.
package main

import (
	"os"

	"github.com/openbao/openbao/command"
)

func main() { os.Exit(command.Run(os.Args[1:])) }
GO
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
start=$(date +%s)
echo "build-openbao: building OpenBao ${OPENBAO_VERSION} (${short}) into $cache; a cold build takes 10-15 minutes" >&2
go mod init sealkeeper.local/openbao-wrapper >/dev/null 2>&1
go mod edit -replace github.com/openbao/openbao/api/auth/approle/v2@v2.0.0=github.com/openbao/openbao/api/auth/approle/v2@v2.6.0
go mod edit -replace github.com/openbao/openbao/api/auth/userpass/v2@v2.0.0=github.com/openbao/openbao/api/auth/userpass/v2@v2.6.0
go get "github.com/openbao/openbao@${short}" >&2 || { echo "build-openbao: go get failed (is the Go module proxy reachable?)" >&2; exit 1; }
go get "github.com/openbao/openbao/sdk/v2@${short}" >&2
go get "github.com/openbao/openbao/api/v2@${short}" >&2 || true
go mod tidy >&2 || true
go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "build-openbao: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
