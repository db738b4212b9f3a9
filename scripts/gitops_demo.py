"""`make gitops`: the platform delivered by Argo CD, played step by step.

On the running local cluster of ./platform.yaml (`make gitops` brings it up first):

1. clones this checkout's committed HEAD into .gitops-demo/repo, the source of truth the
   demo commits to (your own checkout is never written);
2. `gpuplane gitops up --repo .gitops-demo/repo`: Argo CD syncs every Application;
3. commits a DownscalePolicy change (idleFor 20s -> 15s) and shows the cluster taking it;
   (a second run, which finds 15s live, commits 18s);
4. stops the simulated traffic of ml/llm-inference and shows the downscaler (its pod on
   the kubelet node where one runs, else the host process) scaling it to zero, while the
   demo Application stays Synced: Argo CD does not fight the scale to zero.

Leaves gitops up; `gpuplane gitops down` stops it. Exit status: 0 when every step was
seen, 1 when one was not in time (the step is named).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from lightkube.resources.apps_v1 import Deployment

from gpuplane.backends.local.gitops.stack import Application
from gpuplane.downscaler.resource import DownscalePolicy
from gpuplane.kube import connect

REPO = Path(__file__).resolve().parents[1]
DEMO_REPO = REPO / ".gitops-demo" / "repo"
GPUPLANE = [sys.executable, "-m", "gpuplane.cli.main"]
GIT = shutil.which("git") or "git"
POLICY_FILE = "apps/demo/policy.yaml"
TARGET = ("ml", "llm-inference")
ORIGINAL_REPLICAS = "gpuplane.io/original-replicas"


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def cli(*args: str) -> str:
    """Run the CLI, its output shown as it comes; stop the demo when it fails."""
    done = subprocess.run([*GPUPLANE, *args], check=False, stdout=subprocess.PIPE, text=True)
    print(done.stdout, end="", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"gitops demo: `gpuplane {' '.join(args)}` exited {done.returncode}")
    return done.stdout


def git(*args: str) -> str:
    done = subprocess.run(
        [GIT, "-C", str(DEMO_REPO), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def operator_whereabouts() -> str:
    """Where the operator runs, as `gpuplane status` says: its pod, delivered by Argo CD,
    on the kubelet node where one runs, else the host process."""
    done = subprocess.run(
        [*GPUPLANE, "status", "-o", "json"], capture_output=True, text=True, check=False
    )
    components = json.loads(done.stdout or "{}").get("components", [])
    found = [c["detail"] for c in components if c["name"] == "downscaler"]
    return found[0] if found else "not listed by gpuplane status"


def seconds_until(what: str, check: Callable[[], bool], timeout: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"gitops demo: {what}: not seen after {timeout:.0f} s")
        time.sleep(0.2)
    return time.monotonic() - start


def main() -> None:
    say(f"the source of truth: a clone of this checkout's HEAD in {DEMO_REPO.relative_to(REPO)}")
    shutil.rmtree(DEMO_REPO, ignore_errors=True)
    DEMO_REPO.parent.mkdir(exist_ok=True)
    subprocess.run([GIT, "clone", "-q", str(REPO), str(DEMO_REPO)], check=True)

    say("gpuplane gitops up: Argo CD syncs the platform's Applications from it")
    cli("gitops", "up", "--repo", str(DEMO_REPO), "--wait", "300")
    client = connect(Path(cli("kubeconfig").strip()))
    say(f"the downscaler that acts: {operator_whereabouts()}")

    # A value the cluster does not hold yet, so a second run shows a change too.
    live = client.get(DownscalePolicy, "inference-idle", namespace="ml")
    wanted = "18s" if live.spec and live.spec.get("idleFor") == "15s" else "15s"
    path = DEMO_REPO / POLICY_FILE
    document = yaml.safe_load(path.read_text())
    before = document["spec"]["idleFor"]
    say(f"a commit: the demo's DownscalePolicy idleFor {before} -> {wanted}")
    document["spec"]["idleFor"] = wanted
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    git("-c", "user.name=demo", "-c", "user.email=demo@localhost", "commit", "-qam", wanted)
    revision = git("rev-parse", "--short", "HEAD")

    def applied() -> bool:
        live = client.get(DownscalePolicy, "inference-idle", namespace="ml")
        return bool(live.spec and live.spec.get("idleFor") == wanted)

    took = seconds_until("the new idleFor in the cluster", applied, 120)
    say(f"commit {revision} (idleFor {before} -> {wanted}) applied by Argo CD in {took:.1f} s")

    def at_zero() -> bool:
        live = client.get(Deployment, TARGET[1], namespace=TARGET[0])
        annotations = (live.metadata.annotations if live.metadata else None) or {}
        return bool(live.spec and live.spec.replicas == 0 and ORIGINAL_REPLICAS in annotations)

    if at_zero():  # a previous run left it there: traffic wakes it first
        say(f"{TARGET[1]} is at zero from a previous run: traffic wakes it first")
        cli("sim", "traffic", "set", f"{TARGET[0]}/{TARGET[1]}", "1")
        seconds_until(f"{TARGET[1]} woken", lambda: not at_zero(), 120)

    say(f"no traffic to {TARGET[0]}/{TARGET[1]}: the downscaler scales it to zero")
    cli("sim", "traffic", "set", f"{TARGET[0]}/{TARGET[1]}", "0")

    took = seconds_until(f"{TARGET[1]} at zero replicas", at_zero, 180)
    live = client.get(Deployment, TARGET[1], namespace=TARGET[0])
    recorded = (live.metadata.annotations or {}).get(ORIGINAL_REPLICAS) if live.metadata else None
    say(f"{TARGET[1]}: 0 replicas after {took:.0f} s (the ledger records {recorded})")

    def demo_synced() -> bool:
        status = dict(client.get(Application, "demo", namespace="argocd")).get("status") or {}
        return bool((status.get("sync") or {}).get("status") == "Synced")

    seconds_until("the demo Application Synced at zero", demo_synced, 60)
    say("Argo CD keeps it at zero, the demo Application Synced:")
    cli("gitops", "status")
    say(f"commit more to {DEMO_REPO.relative_to(REPO)}; `gpuplane gitops down` stops Argo CD")


if __name__ == "__main__":
    main()
