#!/usr/bin/env bash
# Builds (or reuses) one real server and prints its path: SEALKEEPER_SERVER=vault (the default) or openbao.
# (scripts/setup.sh builds both; the test suite runs against both, see docs/testing.md.)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case "${SEALKEEPER_SERVER:-vault}" in
  vault) exec bash "$here/build-vault.sh" ;;
  openbao) exec bash "$here/build-openbao.sh" ;;
  *) echo "build-server: SEALKEEPER_SERVER must be vault or openbao" >&2; exit 1 ;;
esac
