#!/usr/bin/env bash
# The chat model service's CPU engine, llama-cpp-python, is a source distribution only: its
# wheel is built once (llama.cpp compiled for this host: about 11 minutes on 2 cores) into
# the cache's wheels/ folder, where `make llm` installs it from. The cache is an
# optimisation: with it empty the wheel is built again.
# Usage: scripts/llm-engine-wheel.sh VENV REQUIREMENT (e.g. llama-cpp-python==0.3.36)
set -euo pipefail
venv=${1:?usage: scripts/llm-engine-wheel.sh VENV REQUIREMENT}
requirement=${2:?usage: scripts/llm-engine-wheel.sh VENV REQUIREMENT}
wheels=$("$venv/bin/python" -c 'from gpuplane.toolchain import cache_dir; print(cache_dir() / "wheels")')
version=${requirement#*==}
if compgen -G "$wheels/llama_cpp_python-$version-*.whl" > /dev/null; then
  echo "llama-cpp-python $version: the wheel built before ($wheels)"
  exit 0
fi
mkdir -p "$wheels"
echo "building llama-cpp-python $version from source into $wheels (once; about 11 min on 2 cores)"
started=$(date +%s)
# Progress: one line a minute while cmake and the compiler work (pip's own output is quiet).
( while sleep 60; do echo "  ... still building llama.cpp ($(( ($(date +%s) - started) / 60 )) min)"; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
"$venv/bin/pip" wheel --quiet --no-deps --no-binary llama-cpp-python -w "$wheels" "$requirement"
echo "llama-cpp-python $version built in $(( $(date +%s) - started )) s"
