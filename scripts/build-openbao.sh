#!/usr/bin/env bash
# Builds the real OpenBao server (MPL-2.0) from the exact upstream sources in ../shared/openbao (the Go module proxy
# reachable here refuses every github.com/openbao/* module), cached by version and commit. Every other dependency
# comes from the Go module proxy. Prints the binary path on stdout; rebuilds only when the cached binary is missing.
# The sources are unpacked under the cache, never into the repository.
set -euo pipefail
OPENBAO_VERSION="${OPENBAO_VERSION:-2.6.2}"
OPENBAO_COMMIT="${OPENBAO_COMMIT:-dd9c19c37a878cf4a81b18efb8d6f0599c7da923}"
short="${OPENBAO_COMMIT:0:12}"
here="$(cd "$(dirname "$0")" && pwd)"
src="${SEALKEEPER_OPENBAO_SRC:-$here/../../shared/openbao}"
cache="${SEALKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealkeeper}/openbao-${OPENBAO_VERSION}-${short}"
bin="$cache/bao"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null || { echo "build-openbao: Go is not installed (need go >= 1.25 on PATH)" >&2; exit 1; }
[ -f "$src/openbao-${OPENBAO_VERSION}.tar.gz" ] || {
  echo "build-openbao: $src/openbao-${OPENBAO_VERSION}.tar.gz not found (set SEALKEEPER_OPENBAO_SRC to the folder of the OpenBao source tarballs)" >&2
  exit 1
}
mkdir -p "$cache"
# One build at a time: a second caller waits for the first and then reuses its binary.
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
start=$(date +%s)
echo "build-openbao: building OpenBao ${OPENBAO_VERSION} (${short}) into $cache; a cold build takes 10-25 minutes" >&2
# Verify the sources before anything is unpacked.
(cd "$src" && sha256sum --quiet -c SHA256SUMS) >&2 || { echo "build-openbao: SHA-256 mismatch in $src" >&2; exit 1; }
work="$cache/src"
rm -rf "$work"; mkdir -p "$work"
for t in "$src"/*.tar.gz; do tar -xzf "$t" -C "$work"; done
tree="$work/openbao-${OPENBAO_VERSION}"
[ -f "$tree/go.mod" ] || { echo "build-openbao: $tree/go.mod missing after unpacking" >&2; exit 1; }
cd "$tree"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
# The refused modules point at their unpacked directories (OpenBao's own ./api, ./sdk replaces stay as they are).
go mod edit -replace "github.com/openbao/go-kms-wrapping/v2=$work/go-kms-wrapping-v2.8.0"
go mod edit -replace "github.com/openbao/go-kms-wrapping/plugin/v2=$work/gkw-plugin-v2.3.0"
for d in "$work"/gkw-*-v*; do
  name=$(basename "$d"); name=${name#gkw-}; name=${name%-v*}
  [ "$name" = plugin ] && continue
  go mod edit -replace "github.com/openbao/go-kms-wrapping/wrappers/$name/v2=$d"
done
go mod edit -replace "github.com/openbao/openbao-template=$work/openbao-template-v1.0.1"
go mod download >&2
go build -trimpath -ldflags "-s -w -X github.com/openbao/openbao/version.fullVersion=${OPENBAO_VERSION}" -o "$bin.tmp" . >&2
mv "$bin.tmp" "$bin"
echo "build-openbao: built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
