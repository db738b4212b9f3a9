"""Cluster backends behind one contract: ``sim`` (KWOK) and ``k3d`` (real GPUs)."""
