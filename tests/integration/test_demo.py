"""`gpuplane sim demo`, the main job of `make demo`, on the session's sim cluster: every
step of the story in order, the wake measured, and afterwards every dashboard query has
data. The demo's namespace goes afterwards, so its GPU is free for the other tests."""

from __future__ import annotations

import json
import time

from lightkube.core.exceptions import ApiError
from lightkube.resources.core_v1 import Namespace

from tests.integration.conftest import SimCluster

STEPS = (
    "serves 5 requests/s",
    "traffic stops",
    "submitted: Pending",
    "scaled to 0",
    "got the freed GPU",
    "traffic returns",
    "restored to 1 replica",
    "ready again",
    "downscaler measured the wake",
)


def test_demo_story_end_to_end(sim_cluster: SimCluster) -> None:
    try:
        demo = sim_cluster.cli("sim", "demo")
        assert demo.code == 0, demo.stdout + demo.stderr
        positions = [demo.stdout.find(step) for step in STEPS]
        assert -1 not in positions, demo.stdout
        assert positions == sorted(positions), demo.stdout
        check = sim_cluster.cli("observability", "check", "--live", "-o", "json")
        failed = [row for row in json.loads(check.stdout) if not row["ok"]]
        assert check.code == 0 and not failed, json.dumps(failed, indent=2)
    finally:
        with_namespace_gone(sim_cluster, "ml")


def with_namespace_gone(cluster: SimCluster, name: str, timeout: float = 120.0) -> None:
    try:
        cluster.client.delete(Namespace, name)
    except ApiError as error:
        if error.status.code != 404:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            cluster.client.get(Namespace, name)
        except ApiError as error:
            if error.status.code == 404:
                return
            raise
        time.sleep(0.5)
    raise AssertionError(f"namespace {name} still there after {timeout:.0f}s")
