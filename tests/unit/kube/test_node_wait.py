"""Waiting for nodes, with fake time and a stand-in for the API's Node list: returns as
soon as every node is done, and on timeout names the laggards and what to look at."""

from __future__ import annotations

from typing import Any

import pytest

from gpuplane.errors import OperationError
from gpuplane.kube.node_wait import wait_nodes
from tests.unit.fake_time import FakeTime


class Listed:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def to_dict(self) -> dict[str, Any]:
        return self.document


class NodeList:
    """Answers ``list(Node)`` with the nodes registered so far (one more per call)."""

    def __init__(self, names: list[str]) -> None:
        self.names, self.calls = names, 0

    def list(self, _: object) -> list[Listed]:
        self.calls += 1
        return [Listed({"metadata": {"name": n}}) for n in self.names[: self.calls]]


def test_returns_once_every_node_is_done() -> None:
    nodes, time = NodeList(["a", "b", "c"]), FakeTime()
    wait_nodes(
        nodes,  # type: ignore[arg-type]
        ["a", "c"],
        lambda view: view is not None,
        "not registered",
        timeout=10,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert nodes.calls == 3
    assert time.now == pytest.approx(0.1)


def test_timeout_names_the_laggards() -> None:
    nodes, time = NodeList(["a"]), FakeTime()
    with pytest.raises(OperationError, match=r"^b not registered by its kubelet after 2s$"):
        wait_nodes(
            nodes,  # type: ignore[arg-type]
            ["a", "b"],
            lambda view: view is not None,
            "not registered by its kubelet",
            timeout=2,
            clock=time.clock,
            sleep=time.sleep,
        )
    assert 2.0 < time.now < 2.2
