"""The GPU smoke test on a real cluster: nvidia-smi runs to completion and sees a GPU."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import yaml
from lightkube import Client
from lightkube.resources.core_v1 import Pod

from gpuplane.verify.model import CheckResult, failed, passed

DESCRIPTION = "the GPU smoke test pod runs nvidia-smi to completion and its log shows a GPU"
# nvidia-smi's table lists each GPU on a line like "|   0  NVIDIA GeForce RTX 4090   Off |".
_GPU_LINE = re.compile(r"^\|\s+\d+\s+(NVIDIA|Tesla|Quadro)[^|]*\|", re.MULTILINE)


def gpu_lines(log: str) -> list[str]:
    """The GPU rows of an nvidia-smi table (empty if it shows none)."""
    return [match.group(0).strip("| ").strip() for match in _GPU_LINE.finditer(log)]


def judge_log(phase: str, log: str) -> CheckResult:
    """Pure verdict on the finished pod's phase and log."""
    if phase != "Succeeded":
        tail = " | ".join(log.strip().splitlines()[-3:]) or "no log"
        return failed("gpu.smoke-test", DESCRIPTION, f"pod ended {phase}: {tail}")
    rows = gpu_lines(log)
    if not rows:
        return failed("gpu.smoke-test", DESCRIPTION, "nvidia-smi succeeded but listed no GPU")
    return passed("gpu.smoke-test", DESCRIPTION, *rows)


def run_smoke_test(
    client: Client,
    namespace: str,
    manifest: Path,
    *,
    timeout: float = 300.0,
    image: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    document = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    if image is not None:
        # Only the image changes: the GPU request, RuntimeClass and placement stay.
        document["spec"]["containers"][0]["image"] = image
        document["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    pod = cast(Pod, Pod.from_dict(document))
    created = client.create(pod, namespace=namespace)
    name = created.metadata.name if created.metadata and created.metadata.name else "gpu-smoke-test"
    deadline = clock() + timeout
    phase = "Pending"
    while clock() < deadline:
        live = client.get(Pod, name, namespace=namespace)
        phase = (live.status.phase if live.status else None) or "Pending"
        if phase in ("Succeeded", "Failed"):
            log = "\n".join(client.log(name, namespace=namespace))
            return judge_log(phase, log)
        sleep(1.0)
    return failed(
        "gpu.smoke-test",
        DESCRIPTION,
        f"pod {namespace}/{name} still {phase} after {timeout:.0f}s "
        "(image pull? runtimeClass nvidia missing? see kubectl describe)",
    )
