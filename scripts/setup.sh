#!/usr/bin/env bash
# Everything a fresh machine needs for sealkeeper's demo and test suite, idempotent and quick when warm:
# Debian packages (age, GnuPG, openssl, tmux, zsh), npm dependencies (npm ci, which also builds dist/),
# the KMS emulator (moto server, in a venv under the cache), and both real servers (Vault and OpenBao) built from source.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${SEALKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealkeeper}"
mkdir -p "$cache"
say() { echo "setup: $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }

# 1. Debian packages: the real clients the tests drive.
missing=()
for pair in age:age gpg:gnupg openssl:openssl tmux:tmux script:bsdutils zsh:zsh; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Toolchains that must already be on the machine.
command -v node >/dev/null || { say "Node.js >= 20.19 is required"; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { say "Node.js >= 20.19 is required (found $(node --version))"; exit 1; }
command -v go >/dev/null || { say "Go >= 1.25 is required to build the real server from Go modules"; exit 1; }
command -v python3 >/dev/null || { say "python3 is required for the KMS emulator (moto)"; exit 1; }

# 3. npm dependencies (lockfile-exact); `prepare` builds dist/.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
else
  npm run --silent build
fi

# 4. The KMS emulator: moto's server, pinned, in its own venv.
MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
venv="$cache/moto-$MOTO_VERSION"
if [ ! -x "$venv/bin/moto_server" ]; then
  say "installing moto[server]==$MOTO_VERSION into $venv"
  # Debian's own python3 needs python3-venv for this; pyenv's and most others have it built in
  python3 -m venv "$venv" 2>/dev/null || { as_root apt-get update -qq; DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null; rm -rf "$venv"; python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
fi

# 5. The real servers, each built from source and cached by version: Vault 1.21.0 from Go modules
# (scripts/build-vault.sh) and OpenBao 2.6.2 from the source tarballs in ../shared/openbao (scripts/build-openbao.sh).
# Both builds run at the same time (one downloads modules while the other compiles); cold, 15-30 minutes on 2 cores
# (docs/testing.md), warm a second. SEALKEEPER_SERVERS=vault (or =openbao) builds only that one.
servers="${SEALKEEPER_SERVERS:-vault,openbao}"
pids=()
names=()
for server in ${servers//,/ }; do
  case "$server" in vault|openbao) ;; *) say "SEALKEEPER_SERVERS: unknown server $server (vault, openbao)"; exit 1 ;; esac
  # stdout (the binary's path) to a file, the build's progress to our stderr, prefixed with the server's name
  ( set -o pipefail; bash "scripts/build-$server.sh" 2>&1 >"$cache/setup-$server.path" | sed -u "s/^/setup: [$server] /" >&2 ) &
  pids+=("$!")
  names+=("$server")
done
# 6. The Kubernetes test bed (scripts/build-kube.sh: kube-apiserver + kubectl, etcd, the ESO controller and its CRDs,
# helm; each from Go modules, cached by version), built beside the servers. The demo's default story does not use
# it: `setup.sh --demo` (the README's demo line) skips it; `npm run demo -- --kubernetes` builds what it needs.
if [ "${1:-}" != "--demo" ]; then
  ( set -o pipefail; bash scripts/build-kube.sh all 2>&1 >"$cache/setup-kube.path" | sed -u "s/^/setup: [kube] /" >&2 ) &
  pids+=("$!")
  names+=("kube")
fi
failed=0
for i in "${!pids[@]}"; do
  server="${names[$i]}"
  if [ "$server" = kube ]; then
    if wait "${pids[$i]}"; then say "kube test bed: $(tr '\n' ' ' <"$cache/setup-kube.path")"; else
      say "kube test bed: build failed (its output is above, prefixed [kube])"; failed=1; fi
    continue
  fi
  if wait "${pids[$i]}"; then
    bin=$(tail -1 "$cache/setup-$server.path")
    say "$server: $bin ($("$bin" version 2>/dev/null | head -1))"
  else
    say "$server: build failed (its output is above, prefixed [$server])"
    failed=1
  fi
done
exit "$failed"
