#!/usr/bin/env bash
# The validators `make test` runs besides Python's: Prometheus (a real server scrapes the services,
# promtool checks the alert rules). Installed from Debian when missing; where that cannot be done
# (not root, no apt-get) the tests that need them are skipped and say why.
set -uo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing prometheus (Debian) for the scrape and alert-rule tests..."
  { timeout 120 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends prometheus; } \
    >/tmp/test-tools-apt.log 2>&1 || echo "could not install prometheus (see /tmp/test-tools-apt.log): those tests will be skipped"
else
  echo "prometheus is not installed and cannot be installed here (needs root and apt-get): those tests will be skipped"
fi
exit 0
