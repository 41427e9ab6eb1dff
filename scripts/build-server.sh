#!/usr/bin/env bash
# Builds (or reuses) the real server the tests and the demo drive, and prints its path.
# SEALKEEPER_SERVER=vault (default: OpenBao's module is refused by the Go proxy here, see docs/testing.md) or openbao.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case "${SEALKEEPER_SERVER:-vault}" in
  vault) exec bash "$here/build-vault.sh" ;;
  openbao) exec bash "$here/build-openbao.sh" ;;
  *) echo "build-server: SEALKEEPER_SERVER must be vault or openbao" >&2; exit 1 ;;
esac
