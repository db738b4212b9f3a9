#!/usr/bin/env bash
# The GPU end-to-end run (tests/e2e/test_gpu_node.py) on a host with an NVIDIA GPU.
#
#   scripts/e2e-gpu.sh pack          build here (Go, Debian packages), pack what a GPU host
#                                    without Go or network needs into build/e2e-gpu/part*.tar.xz
#   scripts/e2e-gpu.sh unpack FILE   unpack one part into build/e2e-gpu/root (on the GPU host)
#   scripts/e2e-gpu.sh run           on the GPU host: a venv with the packed wheels, then the
#                                    e2e tests; junit, logs and timings under $OUT (or build/e2e-gpu/out)
#
# `make e2e-gpu` = pack + unpack + run on one host that has Go and a GPU. For a GPU host
# without Go (the GPU machine: Python 3.12, no network, at most 64 MiB a transfer) the
# parts travel separately; see docs/real-nodes.md. Exit codes: 0 passed, 1 failed,
# 3 missing prerequisite (no GPU: "not run: needs an NVIDIA GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$root/build/e2e-gpu
action=${1:?usage: scripts/e2e-gpu.sh pack|unpack FILE|run}

pack() {
  local py=$root/.venv/bin/python cache
  cache=$("$py" -c 'from gpuplane.toolchain import cache_dir; print(cache_dir())')
  rm -rf "$work/stage" && mkdir -p "$work/stage/cache/bin" "$work/stage/cache/images" "$work/stage/wheels"
  echo "building the node, GPU and control-plane binaries (cached after the first time)" >&2
  "$py" scripts/e2e_gpu_pack.py "$work/stage"
  echo "downloading the CLI's wheels for CPython 3.12 (what the GPU host lacks)" >&2
  "$py" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$work/stage/wheels" pydantic lightkube cryptography httpx2 rich pyyaml pytest pytest-timeout
  # Part 1: the control plane (one multi-call binary) and KWOK; part 2: the rest.
  (cd "$work/stage" && tar -cf - cache/bin/kube-multicall-* cache/bin/etcd-* cache/bin/kube-apiserver-* \
     cache/bin/kube-controller-manager-* cache/bin/kube-scheduler-* cache/bin/kubelet-* cache/bin/kubectl-* \
     cache/bin/kwok-* cache/bin/kwokctl-* | xz -9 -T0 > "$work/part1.tar.xz")
  (cd "$work/stage" && tar -cf - --exclude='cache/bin/kube-multicall-*' --exclude='cache/bin/etcd-*' \
     --exclude='cache/bin/kube-*' --exclude='cache/bin/kubelet-*' --exclude='cache/bin/kubectl-*' \
     --exclude='cache/bin/kwok*' \
     cache wheels | xz -9 -T0 > "$work/part2.tar.xz")
  ls -l "$work"/part*.tar.xz >&2
}

unpack() {
  mkdir -p "$work/root"
  tar -xJf "${1:?unpack FILE}" -C "$work/root"
}

run() {
  local out=${OUT:-$work/out} venv=$work/venv
  mkdir -p "$out"
  python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --no-index --find-links "$work/root/wheels" \
    pydantic lightkube cryptography httpx2 rich pyyaml pytest pytest-timeout
  export GPUPLANE_CACHE=$work/root/cache GPUPLANE_E2E_OUT=$out PYTHONPATH=$root/src
  set +e
  # A stuck test must not eat the host's time: each test is bounded.
  "$venv/bin/python" -m pytest -p no:cacheprovider -rA -v -o timeout=300 tests/e2e/test_gpu_node.py \
    --junitxml="$out/e2e-gpu-junit.xml" 2>&1 | tee "$out/pytest.log"
  local code=${PIPESTATUS[0]}
  set -e
  # Few files come back from a borrowed machine: the process logs travel as one archive.
  (cd "$out" && find . -maxdepth 1 -name '*.log' -printf '%f\n' | tar -czf logs.tar.gz -T - \
     && find . -maxdepth 1 -name '*.log' ! -name pytest.log -delete)
  if grep -q "not run: needs an NVIDIA GPU" "$out/pytest.log" && ! grep -q " PASSED" "$out/pytest.log"; then
    echo "e2e-gpu: not run: needs an NVIDIA GPU" >&2
    return 3
  fi
  return "$code"
}

case $action in
  pack) pack ;;
  unpack) unpack "${2:-}" ;;
  run) run ;;
  *) echo "usage: scripts/e2e-gpu.sh pack|unpack FILE|run" >&2; exit 2 ;;
esac
