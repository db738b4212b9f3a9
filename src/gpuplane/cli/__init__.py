"""The ``gpuplane`` command line: a thin layer over backends, verify and doctor."""
