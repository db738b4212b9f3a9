"""The CPU engine: the encoder as an ONNX graph (gpuplane.inference.onnx_graph) run by ONNX
Runtime, whose CPU kernels (its own GEMMs, fused LayerNorm and GELU, threads per operator)
beat numpy's per-operation calls on the same computation. Measured on this repository's
two-core host (docs/inference.md): about three times the numpy engine's texts/s at batch
32, vectors equal to the sixth decimal. The graph is built when the service starts, from
the model's own safetensors: nothing is exported or stored beside the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gpuplane.inference.model import Batch, EncoderConfig, read_weights
from gpuplane.inference.onnx_graph import encoder_graph
from gpuplane.inference.weights import WeightsError


class OnnxEngine:
    device = "cpu"
    length_multiple = 1  # every padding token costs compute on a CPU

    def __init__(self, directory: Path, config: EncoderConfig, threads: int = 0) -> None:
        import onnx  # noqa: PLC0415 - the CPU image's engine only
        import onnxruntime  # noqa: PLC0415

        try:
            model = encoder_graph(onnx, read_weights(directory), config)
        except KeyError as error:
            raise WeightsError(f"model.safetensors lacks {error}") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's choice, a thread a core
        self.session = onnxruntime.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.device_name = f"cpu (onnxruntime {onnxruntime.__version__})"
        self.dimensions = config.hidden

    def embed(self, batch: Batch) -> Any:
        """(batch, hidden) float32 unit vectors on the host."""
        return self.session.run(["vectors"], {"ids": batch.ids, "mask": batch.mask})[0]
