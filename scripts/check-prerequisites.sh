#!/usr/bin/env bash
# Fail early, with the fix, when the host lacks what `make demo` / `make test` need.
# Exit code 3 = missing prerequisite (the same code the gpuplane CLI uses).
set -euo pipefail

missing=0
need() {  # need COMMAND "why and how to get it"
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing prerequisite: $1 — $2" >&2
    missing=1
  fi
}

need python3 "Python >= 3.11 runs gpuplane (apt-get install python3 python3-venv)"
need go "Go >= 1.26 builds kube-apiserver, etcd and kwok from their Go modules"
need git "git is used by the Go toolchain and the tests"

if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "missing prerequisite: Python >= 3.11 (found $(python3 --version 2>&1))" >&2
  missing=1
fi
if command -v go >/dev/null 2>&1; then
  version=$(go env GOVERSION | sed 's/^go//')
  major=${version%%.*}; rest=${version#*.}; minor=${rest%%.*}
  if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 26 ]; }; then
    echo "missing prerequisite: Go >= 1.26 (found go$version)" >&2
    missing=1
  fi
fi
[ "$missing" -eq 0 ] || exit 3
