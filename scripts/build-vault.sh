#!/usr/bin/env bash
# Builds the real HashiCorp Vault server (BUSL-1.1, used here for tests only) from Go modules, cached by version.
# Prints the binary path on stdout. Rebuilds only when the cached binary is missing.
set -euo pipefail
VAULT_VERSION="${VAULT_VERSION:-1.21.0}"
cache="${SEALKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealkeeper}/vault-${VAULT_VERSION}"
bin="$cache/vault"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "build-vault: Go is not installed (need go >= 1.25 on PATH)" >&2; exit 1; }
mkdir -p "$cache"
# One build at a time: a second caller waits for the first and then reuses its binary.
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
work="$cache/src"
rm -rf "$work"; mkdir -p "$work"
cd "$work"
cat > main.go <<'GO'
// Wrapper module: builds the real Vault server from its published Go module.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() { os.Exit(command.Run(os.Args[1:])) }
GO
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
start=$(date +%s)
echo "build-vault: building Vault ${VAULT_VERSION} into $cache; a cold build takes 10-20 minutes" >&2
go mod init sealkeeper.local/vault-wrapper >/dev/null 2>&1
# Vault's own go.mod replaces that a dependent module must repeat (they are ignored outside the main module).
go mod edit -replace github.com/99designs/keyring=github.com/Jeffail/keyring@v1.2.3
go mod edit -replace github.com/ma314smith/signedxml@v1.1.1=github.com/moov-io/signedxml@v1.1.1
go get "github.com/hashicorp/vault@v${VAULT_VERSION}" >&2 || { echo "build-vault: go get failed (is the Go module proxy reachable?)" >&2; exit 1; }
go mod tidy >&2 || true
go build -trimpath -ldflags "-s -w" -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "build-vault: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
