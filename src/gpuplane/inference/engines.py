"""Which engine embeds, on which device, in which precision (the choice is pure; loading
is the I/O beside it).

- ``onnxruntime``: the encoder as an ONNX graph on ONNX Runtime, the CPU's engine (torch's
  wheels weigh gigabytes; ONNX Runtime and onnx about 110 MB), about three times numpy's
  texts/s on this repository's two-core host.
- ``numpy``: the hand-written encoder over numpy, where ONNX Runtime is not installed.
- ``torch``: the model's layers as PyTorch's own ``nn.TransformerEncoder`` (fused fast
  path, nested tensors) in half precision, without importing transformers: the GPU's
  engine. Measured on an H100 (docs/inference.md, run 3): cold start 3.6 s against 11.0 s
  (importing transformers alone takes 6.7-7 s there), batch 1 over HTTP p50 3.6 ms, 9 %
  below transformers' peak throughput at batch 512; for a service woken from zero the
  cold start weighs more. On CUDA it replays batches of up to 128 texts from CUDA graphs
  (``--no-cuda-graphs`` turns that off).
- ``transformers``: transformers' BERT on torch with fused attention (SDPA), half
  precision on CUDA: the field's reference implementation, the highest peak throughput.
- ``auto``: torch on CUDA when torch sees a GPU; on the CPU onnxruntime where it is
  installed, else numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpuplane.inference.model import Encoder, EncoderConfig, Engine, read_weights

ENGINES = ("auto", "onnxruntime", "numpy", "transformers", "torch")
DEVICES = ("auto", "cpu", "cuda")
DTYPE_CHOICES = ("auto", "float32", "float16", "bfloat16")
CPU_ENGINES = ("onnxruntime", "numpy")


@dataclass(frozen=True)
class EngineChoice:
    engine: str  # numpy | transformers | torch
    device: str  # cpu | cuda
    dtype: str  # float32 | float16 | bfloat16
    cuda_graphs: bool = False  # the torch engine on CUDA only


def choose_engine(
    engine: str,
    device: str,
    dtype: str,
    *,
    cuda: bool,
    cuda_graphs: bool = False,
    onnxruntime: bool = False,
) -> EngineChoice:
    """The engine for the flags, given whether CUDA is usable; ``ValueError`` for a
    combination that cannot run (its message names the flags)."""
    if engine not in ENGINES or device not in DEVICES or dtype not in DTYPE_CHOICES:
        raise ValueError(f"unknown --engine {engine!r}, --device {device!r} or --dtype {dtype!r}")
    if device == "cuda" and not cuda:
        raise ValueError("--device cuda: torch sees no CUDA device (or torch is not installed)")
    cpu_only = engine in CPU_ENGINES
    if device == "auto":
        device = "cuda" if cuda and not cpu_only else "cpu"
    if engine == "auto":
        engine = "torch" if device == "cuda" else ("onnxruntime" if onnxruntime else "numpy")
    if engine == "onnxruntime" and not onnxruntime:
        raise ValueError("--engine onnxruntime: onnxruntime (or onnx) is not installed")
    if engine in CPU_ENGINES and device == "cuda":
        raise ValueError(f"--engine {engine} runs on the CPU only: use --engine torch")
    if engine in CPU_ENGINES and dtype not in ("auto", "float32"):
        raise ValueError(f"--engine {engine} computes in float32 only, not {dtype}")
    if dtype == "auto":
        dtype = "float16" if device == "cuda" else "float32"
    graphs = cuda_graphs and engine == "torch" and device == "cuda"
    return EngineChoice(engine, device, dtype, graphs)


def onnxruntime_usable() -> bool:
    """Whether the CPU image's engine is installed (onnx writes its graph)."""
    import importlib.util  # noqa: PLC0415

    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


def cuda_usable() -> bool:
    try:
        import torch  # noqa: PLC0415 - absent from the CPU image
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def load_engine(directory: Path, config: EncoderConfig, choice: EngineChoice) -> Engine:
    """The chosen engine with its weights on its device."""
    if choice.engine == "onnxruntime":
        from gpuplane.inference.onnx_engine import OnnxEngine  # noqa: PLC0415

        return OnnxEngine(directory, config)
    if choice.engine == "numpy":
        from gpuplane.inference.ops import NumpyOps  # noqa: PLC0415

        return Encoder(config, read_weights(directory), NumpyOps())
    if choice.engine == "torch":
        from gpuplane.inference.torch_engine import TorchEncoderEngine  # noqa: PLC0415

        return TorchEncoderEngine(
            directory, config, choice.device, choice.dtype, cuda_graphs=choice.cuda_graphs
        )
    from gpuplane.inference.transformers_engine import TransformersEngine  # noqa: PLC0415

    return TransformersEngine(directory, choice.device, choice.dtype)
