#!/usr/bin/env bash
# Install the real servers the store tests and benchmarks start (idempotent):
#   redis-server           from Debian (apt)
#   moto[server]           from PyPI: a DynamoDB-API server (moto_server)
# The tests start and stop them on free loopback ports themselves.
set -euo pipefail

apt_install() { # apt_install PACKAGE...
  apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq "$@"; }
}

if ! command -v redis-server >/dev/null; then
  apt_install redis-server
fi
redis-server --version

if ! python3 -c "import moto.server, flask" >/dev/null 2>&1; then
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  python3 -m pip install --quiet 'moto[server]' ||
    python3 -m pip install --quiet --break-system-packages 'moto[server]'
fi
python3 -c "import moto; print('moto', moto.__version__)"
