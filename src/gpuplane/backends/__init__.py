"""Cluster backends behind one contract: ``local`` (this host: KWOK or kubelet nodes) and
``k3d`` (k3s in Docker, real GPUs)."""
