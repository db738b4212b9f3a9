"""Waiting on Nodes: one poll over the Node list, read through ``read_node``, until a
predicate holds for each node named (registered, Ready, GPUs advertised, ...)."""

from __future__ import annotations

import time
from collections.abc import Callable

from lightkube import Client
from lightkube.resources.core_v1 import Node as NodeResource

from gpuplane.errors import OperationError
from gpuplane.kube.nodes import NodeView, read_node


def wait_nodes(
    client: Client,
    names: list[str],
    done: Callable[[NodeView | None], bool],
    problem: str,
    *,
    timeout: float,
    interval: float = 0.05,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Poll the Nodes of ``names`` until ``done`` holds for each (None: not registered);
    on timeout raise OperationError naming the laggards and ``problem``."""
    deadline = clock() + timeout
    pending = list(names)
    while True:
        live = {v.name: v for v in (read_node(n.to_dict()) for n in client.list(NodeResource))}
        pending = [name for name in pending if not done(live.get(name))]
        if not pending:
            return
        if clock() > deadline:
            raise OperationError(f"{', '.join(pending)} {problem} after {timeout:.0f}s")
        sleep(interval)
