"""`gpuplane sim demo`, the main job of `make demo`, on the session's sim cluster: every
step of the story in order, the wake measured, and afterwards every dashboard query has
data. The demo's namespace goes afterwards, so its GPU is free for the other tests."""

from __future__ import annotations

import json

from tests.integration.conftest import SimCluster, delete_namespace

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
        # Every node is KWOK here: the real service's wake act says it did not run.
        assert "the zero-loss wake (the real service behind the activator): not run" in (
            demo.stdout
        )
        assert "held 20" not in demo.stdout
        assert (
            "the streamed wake (the chat model behind the activator): not run, every node is KWOK"
            in demo.stdout
        )
        check = sim_cluster.cli("observability", "check", "--live", "-o", "json")
        failed = [row for row in json.loads(check.stdout) if not row["ok"]]
        assert check.code == 0 and not failed, json.dumps(failed, indent=2)
    finally:
        delete_namespace(sim_cluster.client, "ml")
