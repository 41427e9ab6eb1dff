#!/usr/bin/env bash
# Builds the real Kubernetes test-bed components from Go modules, each cached by version under the cache
# (like build-vault.sh), and prints the binary path(s) on stdout, one per line, in the order asked:
#   bash scripts/build-kube.sh apiserver   -> .../kube-1.37.2/kube-apiserver
#   bash scripts/build-kube.sh kubectl     -> .../kube-1.37.2/kubectl
#   bash scripts/build-kube.sh etcd        -> .../etcd-3.7.3/etcd
#   bash scripts/build-kube.sh eso         -> .../eso-0.16.2/external-secrets (CRDs in .../eso-0.16.2/crds/)
#   bash scripts/build-kube.sh helm        -> .../helm-3.22.0/helm
#   bash scripts/build-kube.sh all         -> all of the above
# Each component takes its own flock, so a second caller waits for the running build and reuses its binary.
# The recipe (versions, staging replaces, -X version flags) is the one in ../shared/KUBERNETES.md.
set -euo pipefail
KUBE_VERSION="${KUBE_VERSION:-1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.3}"
ESO_VERSION="${ESO_VERSION:-0.16.2}"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
root="${SEALKEEPER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sealkeeper}"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

say() { echo "build-kube: $*" >&2; }
need_go() { command -v go >/dev/null || { say "Go is not installed (need go >= 1.25 on PATH)"; exit 1; }; }

# locked DIR FILE... : returns 0 when every FILE exists in DIR; otherwise takes DIR's lock (held on fd 9 until the
# script exits) and returns 0 if another builder finished them meanwhile, 1 if the caller has to build.
locked() {
  local dir=$1; shift
  local f ok=1
  for f in "$@"; do [ -e "$dir/$f" ] || ok=0; done
  [ $ok = 1 ] && return 0
  need_go
  mkdir -p "$dir"
  exec 9>"$dir/.build.lock"
  flock 9
  ok=1
  for f in "$@"; do [ -e "$dir/$f" ] || ok=0; done
  [ $ok = 1 ] && { exec 9>&-; return 0; }
  return 1
}

build_kube() {
  local dir="$root/kube-$KUBE_VERSION"
  if locked "$dir" kube-apiserver kubectl; then return 0; fi
  local start; start=$(date +%s)
  say "building kube-apiserver and kubectl v$KUBE_VERSION into $dir (cold: 10-15 minutes on 2 cores)"
  local work="$dir/src"
  rm -rf "$work"; mkdir -p "$work"; cd "$work"
  go mod init sealkeeper.local/kube-wrapper >/dev/null 2>&1
  cat > tools.go <<'GO'
//go:build tools

// Wrapper module: pins the real Kubernetes commands from their published Go module.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  # k8s.io/kubernetes points its staging modules at ./staging with v0.0.0; a dependent module must replace each
  # by its published version (v0.<minor>.<patch>). The list comes from the upstream go.mod itself.
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$gomod" ] || { say "could not download k8s.io/kubernetes@v$KUBE_VERSION (is the Go module proxy reachable?)"; exit 1; }
  local staging="v0.${KUBE_VERSION#*.}"
  local n=0 m
  for m in $(sed -n 's#^\s*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$gomod"); do
    go mod edit -replace "$m=$m@$staging"; n=$((n + 1))
  done
  [ $n -gt 0 ] || { say "no staging replaces found in $gomod"; exit 1; }
  go mod edit -require "k8s.io/kubernetes@v$KUBE_VERSION"
  go mod tidy >&2
  local minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  local major=${KUBE_VERSION%%.*}
  local ld="-s -w"
  local p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -ldflags "$ld" -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver >&2
  mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
  say "kube-apiserver built in $(( $(date +%s) - start ))s"
  local s2; s2=$(date +%s)
  go build -trimpath -ldflags "$ld" -o "$dir/kubectl.tmp" k8s.io/kubernetes/cmd/kubectl >&2
  mv "$dir/kubectl.tmp" "$dir/kubectl"
  say "kubectl built in $(( $(date +%s) - s2 ))s (kube total $(( $(date +%s) - start ))s)"
  exec 9>&-
}

build_etcd() {
  local dir="$root/etcd-$ETCD_VERSION"
  if locked "$dir" etcd; then return 0; fi
  local start; start=$(date +%s)
  say "building etcd v$ETCD_VERSION into $dir (cold: 1-3 minutes)"
  local work="$dir/src"
  rm -rf "$work"; mkdir -p "$work"; cd "$work"
  go mod init sealkeeper.local/etcd-wrapper >/dev/null 2>&1
  # The etcd server's main package is the module root.
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2
  go build -trimpath -ldflags "-s -w" -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
  mv "$dir/etcd.tmp" "$dir/etcd"
  say "etcd built in $(( $(date +%s) - start ))s"
  exec 9>&-
}

build_eso() {
  local dir="$root/eso-$ESO_VERSION"
  if locked "$dir" external-secrets crds/.complete; then return 0; fi
  local start; start=$(date +%s)
  say "building the External Secrets Operator v$ESO_VERSION into $dir (cold: 5-8 minutes)"
  # Its go.mod replaces (Masterminds/sprig by a fork) only hold inside its own module: build a writable copy of it.
  local mod
  mod=$(go mod download -json "github.com/external-secrets/external-secrets@v$ESO_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  [ -d "$mod" ] || { say "could not download external-secrets@v$ESO_VERSION"; exit 1; }
  local work="$dir/src"
  rm -rf "$work"; cp -r "$mod" "$work"; chmod -R u+w "$work"; cd "$work"
  rm -rf "$dir/crds"; mkdir -p "$dir/crds"
  cp config/crds/bases/*.yaml "$dir/crds/"
  rm -f "$dir/crds/kustomization.yaml"
  go build -trimpath -ldflags "-s -w" -o "$dir/external-secrets.tmp" . >&2
  mv "$dir/external-secrets.tmp" "$dir/external-secrets"
  touch "$dir/crds/.complete"
  say "ESO built in $(( $(date +%s) - start ))s"
  exec 9>&-
}

build_helm() {
  local dir="$root/helm-$HELM_VERSION"
  if locked "$dir" helm; then return 0; fi
  local start; start=$(date +%s)
  say "building helm v$HELM_VERSION into $dir (cold: 3-5 minutes)"
  local work="$dir/src"
  rm -rf "$work"; mkdir -p "$work"; cd "$work"
  go mod init sealkeeper.local/helm-wrapper >/dev/null 2>&1
  go get "helm.sh/helm/v3@v$HELM_VERSION" >&2
  go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    -o "$dir/helm.tmp" helm.sh/helm/v3/cmd/helm >&2
  mv "$dir/helm.tmp" "$dir/helm"
  say "helm built in $(( $(date +%s) - start ))s"
  exec 9>&-
}

[ $# -gt 0 ] || { echo "usage: build-kube.sh apiserver|kubectl|etcd|eso|helm|all ..." >&2; exit 2; }
for c in "$@"; do
  case "$c" in
    apiserver) (build_kube); echo "$root/kube-$KUBE_VERSION/kube-apiserver" ;;
    kubectl) (build_kube); echo "$root/kube-$KUBE_VERSION/kubectl" ;;
    etcd) (build_etcd); echo "$root/etcd-$ETCD_VERSION/etcd" ;;
    eso) (build_eso); echo "$root/eso-$ESO_VERSION/external-secrets" ;;
    helm) (build_helm); echo "$root/helm-$HELM_VERSION/helm" ;;
    all)
      (build_etcd); (build_kube); (build_helm); (build_eso)
      printf '%s\n' "$root/kube-$KUBE_VERSION/kube-apiserver" "$root/kube-$KUBE_VERSION/kubectl" \
        "$root/etcd-$ETCD_VERSION/etcd" "$root/eso-$ESO_VERSION/external-secrets" "$root/helm-$HELM_VERSION/helm"
      ;;
    *) echo "build-kube: unknown component '$c' (apiserver|kubectl|etcd|eso|helm|all)" >&2; exit 2 ;;
  esac
done
