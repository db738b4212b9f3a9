"""Before the GPU smoke test the probes' pods are deleted and awaited, so a probe never
holds the GPU the smoke test needs (one GPU: the gpu-to-gpu probe held it, seen on the GPU
machine); a pod that will not go is reported, not waited on forever."""

from __future__ import annotations

from typing import Any

from gpuplane.verify.probe_runner import release_probe_pods
from tests.unit.fake_time import FakeTime


class Pods:
    """The API's pods in one namespace; a deleted pod lingers ``linger`` more lists."""

    def __init__(self, names: list[str], linger: int) -> None:
        self.names, self.linger = list(names), linger
        self.deleted: list[str] = []

    def list(self, _: object, namespace: str) -> list[Any]:
        if self.deleted and self.linger == 0:
            self.names = [n for n in self.names if n not in self.deleted]
        self.linger = max(0, self.linger - 1)
        return [type("P", (), {"metadata": type("M", (), {"name": n})()})() for n in self.names]

    def delete(self, _: object, name: str, namespace: str, grace_period: int) -> None:
        assert grace_period == 0
        self.deleted.append(name)


def test_every_probe_pod_is_deleted_and_awaited() -> None:
    pods, time = Pods(["gpu", "plain"], linger=3), FakeTime()
    assert release_probe_pods(pods, "ns", clock=time.clock, sleep=time.sleep)  # type: ignore[arg-type]
    assert sorted(pods.deleted) == ["gpu", "plain"]
    assert pods.names == []


def test_a_pod_that_stays_is_reported_after_the_timeout() -> None:
    pods, time = Pods(["stuck"], linger=10_000), FakeTime()
    released = release_probe_pods(
        pods,  # type: ignore[arg-type]
        "ns",
        timeout=5,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert released is False
    assert 5.0 < time.now < 5.5
