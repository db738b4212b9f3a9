"""The platform.yaml model: the one declared topology both backends and Terraform read.

Field names are a contract (Terraform's ``yamldecode`` and other tools read the same
file). Syntax is checked per field here; rules that span nodes live in ``rules.py``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gpuplane.shared.quoting import quoted
from gpuplane.topology.syntax import (
    Taint,
    dns_label_problem,
    label_key_problem,
    label_value_problem,
    parse_taint,
)

Role = Literal["control-plane", "app", "infra", "gpu"]
Backend = Literal["local", "k3d"]
# What runs a node on the local backend: KWOK simulates it, or the upstream kubelet
# with containerd runs it for real on this host; ``auto``: the backend decides from the
# host's facts (a kubelet node where this host can run one, else KWOK).
Runtime = Literal["kwok", "kubelet", "auto"]
# The local backend's former name: still read, with a deprecation warning.
DEPRECATED_BACKEND_NAMES = {"sim": "local"}

# Labels the node identity is bootstrapped with on every backend (a kubelet may set
# these itself, unlike node-role.kubernetes.io/*).
ROLE_LABEL = "gpuplane.io/role"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_dns_label(value: str) -> str:
    problem = dns_label_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class Metadata(_Strict):
    name: str

    _name_syntax = field_validator("name")(_check_dns_label)


class GpuSharing(_Strict):
    """Time-slicing: each physical GPU is advertised as ``replicas`` nvidia.com/gpu."""

    replicas: int = Field(ge=2, le=64)


class Node(_Strict):
    name: str
    role: Role
    labels: dict[str, str] = Field(default_factory=dict)
    taints: tuple[str, ...] = ()
    gpus: int | None = None
    gpu_product: str | None = Field(default=None, alias="gpuProduct")
    gpu_memory_mib: int | None = Field(default=None, alias="gpuMemoryMiB", gt=0)
    gpu_sharing: GpuSharing | None = Field(default=None, alias="gpuSharing")
    runtime: Runtime = "kwok"

    _name_syntax = field_validator("name")(_check_dns_label)

    @field_validator("labels")
    @classmethod
    def _labels_syntax(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            problem = label_key_problem(key) or label_value_problem(value)
            if problem is not None:
                raise ValueError(problem)
        return labels

    @field_validator("taints")
    @classmethod
    def _taints_syntax(cls, taints: tuple[str, ...]) -> tuple[str, ...]:
        for text in taints:
            parse_taint(text)
        return taints

    @field_validator("gpus")
    @classmethod
    def _gpus_not_negative(cls, gpus: int | None) -> int | None:
        if gpus is not None and gpus < 0:
            raise ValueError(f"must not be negative (got {gpus})")
        return gpus

    @field_validator("gpu_product")
    @classmethod
    def _product_is_label_value(cls, product: str | None) -> str | None:
        # It becomes the nvidia.com/gpu.product label, so it must be a label value.
        problem = None if product is None else label_value_problem(product)
        if problem is not None:
            raise ValueError(problem)
        return product

    @property
    def is_gpu(self) -> bool:
        return self.role == "gpu"

    @property
    def parsed_taints(self) -> tuple[Taint, ...]:
        return tuple(parse_taint(text) for text in self.taints)

    @property
    def gpu_count(self) -> int:
        """Physical GPUs."""
        return self.gpus or 0

    @property
    def gpu_allocatable(self) -> int:
        """What the device plugin advertises: GPUs times time-slicing replicas."""
        return self.gpu_count * (self.gpu_sharing.replicas if self.gpu_sharing else 1)


class Spec(_Strict):
    backend: Backend = "local"
    kubernetes_version: str | None = Field(default=None, alias="kubernetesVersion")
    nodes: tuple[Node, ...]

    @field_validator("backend", mode="before")
    @classmethod
    def _renamed_backend(cls, value: object) -> object:
        return DEPRECATED_BACKEND_NAMES.get(value, value) if isinstance(value, str) else value

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version_syntax(cls, value: object) -> object:
        # YAML reads 1.34 as a number; say so rather than "not a valid string".
        if value is not None and (
            not isinstance(value, str) or not re.fullmatch(r"v1\.\d+\.\d+", value)
        ):
            raise ValueError(f"{quoted(value)} is not a Kubernetes release like v1.34.2")
        return value


class Platform(_Strict):
    api_version: Literal["gpuplane.io/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["Platform"]
    metadata: Metadata
    spec: Spec

    @property
    def name(self) -> str:
        return self.metadata.name

    def nodes_with_role(self, role: Role) -> tuple[Node, ...]:
        return tuple(node for node in self.spec.nodes if node.role == role)

    @property
    def gpu_nodes(self) -> tuple[Node, ...]:
        return self.nodes_with_role("gpu")

    @property
    def kubelet_nodes(self) -> tuple[Node, ...]:
        """Nodes run for real by a kubelet on this host (local backend)."""
        return tuple(node for node in self.spec.nodes if node.runtime == "kubelet")

    @property
    def auto_nodes(self) -> tuple[Node, ...]:
        """Nodes whose runtime the backend resolves from the host's facts."""
        return tuple(node for node in self.spec.nodes if node.runtime == "auto")

    def with_runtimes(self, runtimes: dict[str, Runtime]) -> Platform:
        """This platform with the named nodes' runtimes replaced (the resolution of
        ``auto``); validated again, so a resolution can never break a rule."""
        document = self.model_dump(by_alias=True, exclude_none=True)
        for node in document["spec"]["nodes"]:
            node["runtime"] = runtimes.get(node["name"], node.get("runtime", "kwok"))
        return Platform.model_validate(document)

    @property
    def kwok_nodes(self) -> tuple[Node, ...]:
        """Nodes KWOK simulates (local backend)."""
        return tuple(node for node in self.spec.nodes if node.runtime == "kwok")

    @property
    def kubelet_gpu_node(self) -> Node | None:
        """The gpu node that runs for real here (the NVIDIA driver and device plugin are
        needed), if any; at most one kubelet node exists."""
        return next((node for node in self.kubelet_nodes if node.is_gpu), None)

    @property
    def has_kubelet_gpu_node(self) -> bool:
        return self.kubelet_gpu_node is not None
