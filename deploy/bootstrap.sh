#!/usr/bin/env bash
# Creates the virtualenv and installs the pinned dependencies, runtime and development ones
# (requirements-dev.lock includes requirements.lock). Needs only Python 3.11.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}

if ! "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "Python 3.11 is required; found: $("$python" --version 2>&1)" >&2
  exit 1
fi
if ! "$python" -m venv "$venv" 2>/dev/null; then
  # Debian splits venv/ensurepip into python3.11-venv.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3.11-venv >/dev/null
    rm -rf "$venv"
    "$python" -m venv "$venv"
  else
    echo "python3 -m venv failed: install the python3.11-venv package" >&2
    exit 1
  fi
fi
# (The grep drops pip's notes about this machine's unused local package indexes.)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
