"""What gpuplane's separate processes share (the CLI, the downscaler, the activator, the
inference and gpu-exporter services): leaf modules that import nothing else of gpuplane.

Every service image carries this package beside its own, and the import contracts in
pyproject.toml hold each service to itself and this package. Contracts between processes
(the wake annotation, Kubernetes time formats, the GPU resource name) live here once."""
