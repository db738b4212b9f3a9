"""Bring-up time of ``gpuplane up`` (sim) against plain ``kwokctl create cluster``.

Both use the same cached binaries in the same run, each on a fresh cluster, several
rounds; prints JSON. Target: our overhead <= 20% and <= 15 s absolute.
Run: .venv/bin/python bench/bringup.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from gpuplane.backends.sim.kwokctl import kwokctl_configuration
from gpuplane.backends.sim.processes import stop_leftovers
from gpuplane.toolchain import cache_dir, ensure_built, read_pins, tools_dir

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    pins = read_pins()
    binaries = ensure_built(tools_dir(), cache_dir(), pins)
    gpuplane = [sys.executable, "-m", "gpuplane.cli.main", "-f", str(REPO / "platform.yaml")]
    ours: list[float] = []
    plain: list[float] = []
    with tempfile.TemporaryDirectory(prefix="gpuplane-bench-") as scratch:
        root = Path(scratch)
        config = root / "kwok.yaml"
        config.write_text(
            yaml.safe_dump(kwokctl_configuration(binaries, pins.kubernetes, pins.etcd))
        )
        for index in range(rounds):
            env = {**os.environ, "GPUPLANE_STATE": str(root / f"state-{index}")}
            ours.append(timed([*gpuplane, "up"], env))
            subprocess.run([*gpuplane, "down"], env=env, check=True, capture_output=True)

            kwok_env = {
                **os.environ,
                "KWOK_WORKDIR": str(root / f"kwok-{index}"),
                "KUBECONFIG": str(root / f"kubeconfig-{index}"),
            }
            kwokctl = [str(binaries["kwokctl"]), "--config", str(config)]
            plain.append(
                timed([*kwokctl, "create", "cluster", "--name", "plain", "--wait", "2m"], kwok_env)
            )
            pids = [
                int(pid_file.read_text())
                for pid_file in (root / f"kwok-{index}/clusters/plain/pids").glob("*.pid")
            ]
            subprocess.run(
                [*kwokctl, "delete", "cluster", "--name", "plain"], env=kwok_env, check=True,
                capture_output=True,
            )  # fmt: skip
            # kwokctl returns before its processes exit; let them go before the next
            # round so no round starts on a core still busy with the last shutdown.
            stop_leftovers(pids)
    ours_median, plain_median = statistics.median(ours), statistics.median(plain)
    print(
        json.dumps(
            {
                "benchmark": "sim bring-up, binaries cached",
                "rounds": rounds,
                "gpuplane_up_seconds": [round(value, 3) for value in ours],
                "kwokctl_create_seconds": [round(value, 3) for value in plain],
                "gpuplane_up_median_seconds": round(ours_median, 3),
                "kwokctl_create_median_seconds": round(plain_median, 3),
                "overhead_seconds": round(ours_median - plain_median, 3),
                "overhead_percent": round(100 * (ours_median - plain_median) / plain_median, 1),
                "targets": {"overhead_percent_max": 20, "absolute_seconds_max": 15},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
