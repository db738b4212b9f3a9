"""Which pod holds which GPU, from the kubelet's pod-resources API (gRPC on a unix socket,
``List``). Device ids are what the NVIDIA device plugin advertised: a GPU's UUID, or
``UUID::n`` for the n-th time-slice of a shared GPU (several pods per GPU)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gpuplane.gpu_exporter.wire import messages, strings

DEFAULT_SOCKET = Path("/var/lib/kubelet/pod-resources/kubelet.sock")
LIST_METHOD = "/v1.PodResourcesLister/List"
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class Holder:
    namespace: str
    pod: str
    container: str


@dataclass(frozen=True)
class ContainerDevices:
    """One container the kubelet runs, and the devices it was given, by resource."""

    namespace: str
    pod: str
    container: str
    devices: dict[str, tuple[str, ...]]


def _first(values: list[str]) -> str:
    return values[0] if values else ""


def parse_list_response(data: bytes) -> list[ContainerDevices]:
    """ListPodResourcesResponse: pod_resources=1 {name=1, namespace=2, containers=3
    {name=1, devices=2 {resource_name=1, device_ids=2}}}."""
    found: list[ContainerDevices] = []
    for pod in messages(data, 1):
        pod_name, namespace = _first(strings(pod, 1)), _first(strings(pod, 2))
        for container in messages(pod, 3):
            devices: dict[str, tuple[str, ...]] = {}
            for entry in messages(container, 2):
                resource = _first(strings(entry, 1))
                devices[resource] = devices.get(resource, ()) + tuple(strings(entry, 2))
            found.append(
                ContainerDevices(namespace, pod_name, _first(strings(container, 1)), devices)
            )
    return found


def gpu_uuid(device_id: str) -> str:
    """``GPU-…::3`` (a time-slice replica) and ``GPU-…`` both name the GPU ``GPU-…``."""
    return device_id.split("::", 1)[0]


def holders_by_gpu(
    containers: list[ContainerDevices], resource: str = GPU_RESOURCE
) -> dict[str, list[Holder]]:
    """GPU UUID -> the containers holding it (one, or several when time-sliced), sorted."""
    holders: dict[str, set[Holder]] = {}
    for entry in containers:
        for device in entry.devices.get(resource, ()):
            holder = Holder(entry.namespace, entry.pod, entry.container)
            holders.setdefault(gpu_uuid(device), set()).add(holder)
    return {
        uuid: sorted(found, key=lambda h: (h.namespace, h.pod, h.container))
        for uuid, found in holders.items()
    }


class PodResourcesError(RuntimeError):
    """The kubelet's socket did not answer; the message names it."""


def list_pod_resources(socket: Path, timeout: float = 2.0) -> list[ContainerDevices]:
    """One ``List`` call. grpcio is imported here: only the exporter's process needs it."""
    import grpc  # noqa: PLC0415

    if not socket.exists():
        raise PodResourcesError(f"{socket}: no such socket (is the kubelet running here?)")
    with grpc.insecure_channel(f"unix://{socket}") as channel:
        call = channel.unary_unary(LIST_METHOD)
        try:
            answer: bytes = call(b"", timeout=timeout)
        except grpc.RpcError as error:
            raise PodResourcesError(
                f"{socket}: List failed ({error.code().name}: {error.details()})"
            ) from error
    return parse_list_response(answer)
