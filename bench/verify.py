"""Run time of ``gpuplane verify`` on the sim backend's default topology (JSON).

Brings a sim cluster up in a scratch state dir, runs verify several times, tears it
down. Target: <= 20 s for the default topology.
Run: .venv/bin/python bench/verify.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

from scratch import scratch_platform


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with scratch_platform() as scratch:
        seconds, summaries = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            result = subprocess.run(
                [*scratch.gpuplane, "verify", "-o", "json"],
                env=scratch.env,
                capture_output=True,
                text=True,
                check=False,
            )
            seconds.append(time.perf_counter() - start)
            summaries.append(json.loads(result.stdout)["summary"])
    print(
        json.dumps(
            {
                "benchmark": "gpuplane verify, sim backend, default topology",
                "rounds": rounds,
                "seconds": [round(value, 2) for value in seconds],
                "median_seconds": round(statistics.median(seconds), 2),
                "max_seconds": round(max(seconds), 2),
                "summaries": summaries,
                "target_seconds_max": 20,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
