"""Just enough protobuf to read the kubelet's pod-resources ``List`` answer: varints and
length-delimited fields. Generated code would need the protobuf runtime and a build step
for five small messages; the wire format is stable and simple."""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a valid protobuf message."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data):
            raise WireError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field: an int for varints, bytes for the rest."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, kind = key >> 3, key & 7
        if kind == VARINT:
            value, at = _varint(data, at)
            yield number, value
        elif kind == LENGTH:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise WireError(f"field {number}: {size} bytes past the end")
            yield number, data[at : at + size]
            at += size
        elif kind in (FIXED64, FIXED32):
            width = 8 if kind == FIXED64 else 4
            if at + width > len(data):
                raise WireError(f"field {number}: truncated fixed value")
            yield number, data[at : at + width]
            at += width
        else:
            raise WireError(f"field {number}: wire type {kind} is not supported")


def strings(data: bytes, number: int) -> list[str]:
    return [bytes(v).decode() for n, v in fields(data) if n == number and isinstance(v, bytes)]


def messages(data: bytes, number: int) -> list[bytes]:
    return [v for n, v in fields(data) if n == number and isinstance(v, bytes)]


def encode_field(number: int, value: bytes | str) -> bytes:
    """A length-delimited field (tests build answers with it)."""
    raw = value.encode() if isinstance(value, str) else value
    return _encode_varint(number << 3 | LENGTH) + _encode_varint(len(raw)) + raw


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
