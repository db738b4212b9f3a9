"""The pod-resources answer as the kubelet encodes it (built here field by field) and the
GPU -> pods mapping, time-slicing included (dcgm-exporter#151)."""

from __future__ import annotations

import pytest

from gpuplane.gpu_exporter.podresources import Holder, holders_by_gpu, parse_list_response
from gpuplane.gpu_exporter.wire import WireError, encode_field, fields


def devices(resource: str, *ids: str) -> bytes:
    return encode_field(1, resource) + b"".join(encode_field(2, i) for i in ids)


def container(name: str, *device_messages: bytes) -> bytes:
    return encode_field(1, name) + b"".join(encode_field(2, d) for d in device_messages)


def pod(name: str, namespace: str, *containers: bytes) -> bytes:
    body = encode_field(1, name) + encode_field(2, namespace)
    return body + b"".join(encode_field(3, c) for c in containers)


def answer(*pods: bytes) -> bytes:
    return b"".join(encode_field(1, p) for p in pods)


def test_containers_and_their_devices_are_read() -> None:
    data = answer(
        pod("inference-7d9f-abcde", "ml", container("server", devices("nvidia.com/gpu", "GPU-1"))),
        pod("web", "default", container("main")),
    )
    parsed = parse_list_response(data)
    assert [(c.namespace, c.pod, c.container) for c in parsed] == [
        ("ml", "inference-7d9f-abcde", "server"),
        ("default", "web", "main"),
    ]
    assert parsed[0].devices == {"nvidia.com/gpu": ("GPU-1",)}
    assert parsed[1].devices == {}


def test_a_time_sliced_gpu_maps_to_every_pod_sharing_it() -> None:
    data = answer(
        pod("b", "ml", container("c", devices("nvidia.com/gpu", "GPU-1::1"))),
        pod("a", "ml", container("c", devices("nvidia.com/gpu", "GPU-1::0"))),
        pod("x", "ml", container("c", devices("example.com/fpga", "GPU-1"))),
        pod("solo", "ml", container("c", devices("nvidia.com/gpu", "GPU-2"))),
    )
    holders = holders_by_gpu(parse_list_response(data))
    assert holders == {
        "GPU-1": [Holder("ml", "a", "c"), Holder("ml", "b", "c")],
        "GPU-2": [Holder("ml", "solo", "c")],
    }


def test_unknown_fields_are_skipped() -> None:
    extra_varint = bytes([3 << 3 | 0, 0x96, 0x01])  # field 3, varint 150 (cpu_ids)
    data = answer(pod("p", "ns", container("c") + extra_varint))
    assert [(c.pod, c.container) for c in parse_list_response(data)] == [("p", "c")]


@pytest.mark.parametrize(
    "data",
    [bytes([1 << 3 | 2, 10, 0x41]), bytes([0x08, 0x80]), bytes([1 << 3 | 3])],
    ids=["length past the end", "truncated varint", "group wire type"],
)
def test_broken_bytes_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        list(fields(data))
