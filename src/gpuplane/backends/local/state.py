"""Where a local cluster keeps its state: one directory per cluster name.

Layout under ``<root>/<name>/``: ``kubeconfig`` (0600), ``kwok.yaml`` (our kwokctl
configuration), ``kwok/`` (kwokctl's work dir: PKI, etcd data, logs, pid files).
``down`` removes the whole directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LocalState:
    root: Path
    name: str

    @property
    def directory(self) -> Path:
        return self.root / self.name

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def downscaler_kubeconfig(self) -> Path:
        """The downscaler's own credentials: a ServiceAccount token (0600)."""
        return self.directory / "downscaler.kubeconfig"

    @property
    def prometheus_kubeconfig(self) -> Path:
        """Prometheus' own credentials for discovering kubelet nodes' pods (0600)."""
        return self.directory / "prometheus.kubeconfig"

    @property
    def runtimes(self) -> Path:
        """How ``up`` resolved each ``runtime: auto`` node: later verbs read it back."""
        return self.directory / "runtimes.json"

    @property
    def kwok_config(self) -> Path:
        return self.directory / "kwok.yaml"

    @property
    def kwok_workdir(self) -> Path:
        return self.directory / "kwok"

    @property
    def cluster_dir(self) -> Path:
        """kwokctl's own directory for this cluster (pids, logs, etcd data)."""
        return self.kwok_workdir / "clusters" / self.name

    @property
    def pki(self) -> Path:
        """kwokctl's CA and admin certificate (the CA signs kubelet nodes' certificates)."""
        return self.cluster_dir / "pki"

    @property
    def logs(self) -> Path:
        return self.cluster_dir / "logs"

    def exists(self) -> bool:
        return self.cluster_dir.is_dir()
