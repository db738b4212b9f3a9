"""The pod gateway: its routes and who may use them, and a real relay process on loopback
(bytes both ways, a half-close passed on, an unreachable target closing the client)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpuplane.backends.local.pod_gateway import Route, is_allowed, parse_route
from gpuplane.backends.local.services import free_port

SUBNET = ipaddress.IPv4Network("10.244.0.0/24")
MAX_CONNECTIONS = 3


def test_a_route_is_listen_equals_target() -> None:
    assert parse_route("10.244.0.1:7001=127.0.0.1:6443") == Route(
        ("10.244.0.1", 7001), ("127.0.0.1", 6443)
    )
    for bad in ("10.244.0.1:7001", "10.244.0.1=127.0.0.1:1", ":1=127.0.0.1:2", "a:b=c:1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_route(bad)


def test_only_pods_of_the_subnet_and_the_host_itself_are_let_in() -> None:
    assert is_allowed("10.244.0.17", SUBNET)
    assert is_allowed("127.0.0.1", SUBNET)
    assert not is_allowed("10.244.1.17", SUBNET)
    assert not is_allowed("192.168.1.20", SUBNET)


class EchoServer:
    """Answers each connection with what it read, upper-cased, once the client half-closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                received = b""
                while chunk := connection.recv(65536):
                    received += chunk
                connection.sendall(received.upper())


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[int, int, EchoServer]]:
    echo = EchoServer()
    to_echo, to_nothing = free_port(), free_port()
    closed = free_port()  # nothing listens there
    process = subprocess.Popen(
        [
            sys.executable, "-m", "gpuplane.backends.local.pod_gateway",
            "--subnet", str(SUBNET), "--max-connections", str(MAX_CONNECTIONS),
            f"127.0.0.1:{to_echo}=127.0.0.1:{echo.port}",
            f"127.0.0.1:{to_nothing}=127.0.0.1:{closed}",
        ],
        stdout=(tmp_path / "gateway.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while (tmp_path / "gateway.log").read_text().count("relaying") < 2:
            assert process.poll() is None, (tmp_path / "gateway.log").read_text()
            assert time.monotonic() < deadline, "the gateway never listened"
            time.sleep(0.05)
        yield to_echo, to_nothing, echo
    finally:
        process.terminate()
        assert process.wait(10) == 0  # a clean stop on SIGTERM
        echo.listener.close()


def test_bytes_cross_both_ways_and_a_half_close_is_passed_on(
    relay: tuple[int, int, EchoServer],
) -> None:
    to_echo, _, _ = relay
    payload = b"x" * 300_000  # several reads and writes, with back-pressure
    with socket.create_connection(("127.0.0.1", to_echo), timeout=10) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)  # the echo answers only after this reaches it
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer == payload.upper()


def test_an_unreachable_target_closes_the_client(relay: tuple[int, int, EchoServer]) -> None:
    _, to_nothing, _ = relay
    with socket.create_connection(("127.0.0.1", to_nothing), timeout=10) as client:
        assert client.recv(1) == b""


def test_connections_over_the_cap_are_closed_and_a_freed_slot_serves_again(
    relay: tuple[int, int, EchoServer],
) -> None:
    """Slow or idle clients hold their slots; one more is closed unanswered, at once."""
    to_echo, _, _ = relay
    held = [socket.create_connection(("127.0.0.1", to_echo), timeout=10) for _ in range(3)]
    try:
        for client in held:  # each admitted: the payload reaches the echo (answered below)
            client.sendall(b"held")
        time.sleep(0.3)  # the gateway has counted the three
        with socket.create_connection(("127.0.0.1", to_echo), timeout=10) as extra:
            assert extra.recv(1) == b""  # closed without reaching the target
        while held:  # the echo serves one connection at a time: each in turn, then freed
            client = held.pop(0)
            client.shutdown(socket.SHUT_WR)
            assert client.recv(100) == b"HELD"
            client.close()
        time.sleep(0.3)
        with socket.create_connection(("127.0.0.1", to_echo), timeout=10) as again:
            again.sendall(b"again")
            again.shutdown(socket.SHUT_WR)
            assert again.recv(100) == b"AGAIN"  # admitted: the slots were given back
    finally:
        for client in held:
            client.close()
