"""GitOps on the local backend: Argo CD v2.14.21 syncing a KWOK platform from git (JSON).

On a scratch platform (every node KWOK), from a clone of this checkout's HEAD:

- up: seconds for `gpuplane gitops up` until every Application whose source is local is
  Synced and Healthy (the three remote-chart apps say "source unreachable offline").
- commit to applied: N times (default 5), change `idleFor` of the demo's DownscalePolicy,
  `git commit`, and time until the API server holds the new value, then until the demo
  Application reports Synced at that commit. No webhook: Argo CD polls git (the
  controller's reconciliation timeout is 5 s, the repo server caches a revision 5 s).
- steady state: CPU (% of one core, averaged over the window) and RSS of each GitOps
  process (application controller, repo server, redis, git daemon) with the platform's
  apps synced and nothing changing.

Traffic stays on 127.0.0.1. Run: .venv/bin/python bench/gitops.py [--commits 5] [--window 60]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from lightkube import Client

from gpuplane.backends.local.gitops.stack import PROCESSES, Application, GitOps
from gpuplane.backends.local.state import LocalState
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect
from proc import process_figures
from scratch import REPO, scratch_platform

GIT = shutil.which("git") or "git"
POLICY_FILE = "apps/demo/policy.yaml"
POLICY = ("ml", "inference-idle")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        [GIT, "-C", str(repo), *args], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip()


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench/gitops.py: {what} not after {timeout:.0f} s")
        time.sleep(0.05)


def commit_to_applied(client: Client, repo: Path, idle_for: str) -> dict[str, float]:
    """Commit a new idleFor; seconds until the cluster has it and until the app is Synced."""
    path = repo / POLICY_FILE
    document = yaml.safe_load(path.read_text())
    document["spec"]["idleFor"] = idle_for
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    git(repo, "add", "-A")
    who = ("-c", "user.name=bench", "-c", "user.email=bench@localhost")
    git(repo, *who, "commit", "-qm", f"idleFor {idle_for}")
    committed = time.monotonic()
    revision = git(repo, "rev-parse", "HEAD")

    def applied() -> bool:
        live = client.get(DownscalePolicy, POLICY[1], namespace=POLICY[0])
        return bool(live.spec and live.spec.get("idleFor") == idle_for)

    def synced() -> bool:
        status = dict(client.get(Application, "demo", namespace="argocd")).get("status") or {}
        sync = status.get("sync") or {}
        return bool(sync.get("status") == "Synced" and sync.get("revision") == revision)

    wait(applied, 120, f"idleFor {idle_for} in the cluster")
    applied_s = time.monotonic() - committed
    wait(synced, 120, f"demo Synced at {revision[:8]}")
    return {"applied_s": round(applied_s, 2), "synced_s": round(time.monotonic() - committed, 2)}


def steady_state(gitops: GitOps, window: float) -> dict[str, dict[str, float]]:
    pids = {name: gitops.pid(name) for name in PROCESSES}
    missing = [name for name, pid in pids.items() if pid is None]
    if missing:
        raise SystemExit(f"bench/gitops.py: not running: {', '.join(missing)}")
    before = {name: process_figures(pid) for name, pid in pids.items() if pid is not None}
    time.sleep(window)
    after = {name: process_figures(pid) for name, pid in pids.items() if pid is not None}
    return {
        name: {
            "cpu_percent": round(100 * (after[name][0] - before[name][0]) / window, 1),
            "rss_mb": round(after[name][1], 1),
        }
        for name in before
    }


def bench(commits: int, window: float) -> dict[str, Any]:
    with scratch_platform() as scratch:
        repo = scratch.directory / "repo"
        subprocess.run([GIT, "clone", "-q", str(REPO), str(repo)], check=True, timeout=120)
        started = time.monotonic()
        up = subprocess.run(
            [*scratch.gpuplane, "gitops", "up", "--repo", str(repo), "--wait", "300"],
            env=scratch.env,
            check=False,
            capture_output=True,
            text=True,
        )
        if up.returncode != 0:
            raise SystemExit(f"bench/gitops.py: gitops up failed:\n{up.stdout}{up.stderr}")
        up_s = time.monotonic() - started
        state = LocalState(scratch.directory, "gpuplane")
        client = connect(state.kubeconfig)
        rounds = [commit_to_applied(client, repo, f"{41 + n}s") for n in range(commits)]
        applied = [r["applied_s"] for r in rounds]
        synced = [r["synced_s"] for r in rounds]
        applications = len(GitOps(state).applications(client))
        processes = steady_state(GitOps(state), window)
        return {
            "bench": "gitops",
            "argocd": "v2.14.21 (built from its Go module)",
            "applications": applications,
            "gitops_up_to_converged_s": round(up_s, 1),
            "commit_to_applied_s": {
                "median": statistics.median(applied),
                "max": max(applied),
                "runs": applied,
            },
            "commit_to_synced_s": {"median": statistics.median(synced), "runs": synced},
            "steady_state_window_s": window,
            "processes": processes,
            "total_cpu_percent": round(sum(p["cpu_percent"] for p in processes.values()), 1),
            "total_rss_mb": round(sum(p["rss_mb"] for p in processes.values()), 1),
            "goal": "commit to applied: median <= 15 s",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5)
    parser.add_argument("--window", type=float, default=60.0, help="steady-state seconds")
    args = parser.parse_args()
    print(json.dumps(bench(args.commits, args.window), indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
