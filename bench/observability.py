"""Run time of the observability verbs on a running sim platform (JSON).

Brings the default platform up in a scratch state dir, plays the downscaler story
(`gpuplane sim demo`) so every panel has data, then times `gpuplane observability check
--live` and `gpuplane report --png` several times each, and tears down.
Run: .venv/bin/python bench/observability.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

from scratch import scratch_platform


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, result


def summary(seconds: list[float]) -> dict[str, object]:
    return {
        "seconds": [round(value, 2) for value in seconds],
        "median_seconds": round(statistics.median(seconds), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    with scratch_platform() as scratch:
        gpuplane, env = scratch.gpuplane, scratch.env
        subprocess.run([*gpuplane, "sim", "demo"], env=env, check=True, capture_output=True)
        checks, reports, failed, sizes = [], [], [], []
        for round_ in range(rounds):
            check = [*gpuplane, "observability", "check", "--live", "-o", "json"]
            seconds, result = timed(check, env)
            checks.append(seconds)
            failed.append(sum(not row["ok"] for row in json.loads(result.stdout)))
            png = scratch.directory / f"report-{round_}.png"
            report = [*gpuplane, "report", "--png", str(png), "--since", "5m"]
            seconds, result = timed(report, env)
            reports.append(seconds)
            sizes.append(png.stat().st_size if png.exists() else 0)
    print(
        json.dumps(
            {
                "benchmark": "observability check --live, report --png; sim, after the demo",
                "rounds": rounds,
                "check_live": {**summary(checks), "failed_checks": failed},
                "report_png": {**summary(reports), "bytes": sizes},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
