"""Scrape targets for the pods of kubelet nodes: what Prometheus' Kubernetes service
discovery would give, for the local backend's Prometheus (Debian's build leaves that
discovery out: `kubernetes_sd_configs` is "not found" there).

A LIST then WATCH of each kubelet node's pods (the shared ``ListWatch``, a field
selector, the backend's Prometheus credentials: pods, read only) keeps a copy; after each
change the pods that run on a kubelet node and ask to be scraped
(``prometheus.io/scrape: "true"``, the port in ``prometheus.io/port``) are written whole
to one file_sd file, which Prometheus re-reads within seconds. A KWOK pod is never a
target: its address leads nowhere.

Run: python -m gpuplane.backends.local.pod_targets --kubeconfig K --node N... --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gpuplane.shared.kube_session import KubeSession, current_context
from gpuplane.shared.listwatch import ListWatch
from gpuplane.shared.stop_signals import stop_event

log = logging.getLogger("gpuplane.pod_targets")
SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"


def targets_of(pods: Iterable[dict[str, Any]], nodes: frozenset[str]) -> list[dict[str, Any]]:
    """file_sd entries (sorted: the same pods give the same file) for the pods that run on
    ``nodes`` and ask to be scraped; each labelled with its pod and namespace."""
    entries = []
    for pod in pods:
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        status = pod.get("status") or {}
        port = str(annotations.get(PORT, ""))
        if (
            annotations.get(SCRAPE) == "true"
            and port.isdigit()
            and (pod.get("spec") or {}).get("nodeName") in nodes
            and status.get("phase") == "Running"
            and status.get("podIP")
        ):
            entries.append(
                {
                    "targets": [f"{status['podIP']}:{port}"],
                    "labels": {
                        "pod": str(metadata.get("name", "")),
                        "namespace": str(metadata.get("namespace", "")),
                    },
                }
            )
    return sorted(entries, key=lambda entry: entry["targets"][0])


class PodTargets:
    """The copy of every pod, and the file written from it when the targets change."""

    def __init__(self, nodes: frozenset[str], out: Path) -> None:
        self.nodes, self.out = nodes, out
        self.pods: dict[str, dict[str, Any]] = {}
        self._written: list[dict[str, Any]] | None = None

    @staticmethod
    def _key(pod: dict[str, Any]) -> str:
        metadata = pod.get("metadata") or {}
        return f"{metadata.get('namespace')}/{metadata.get('name')}"

    def listed(self, node: str, items: list[dict[str, Any]]) -> None:
        """A fresh LIST of ``node``'s pods replaces what was known of that node."""
        self.pods = {
            key: pod
            for key, pod in self.pods.items()
            if (pod.get("spec") or {}).get("nodeName") != node
        }
        self.pods.update((self._key(pod), pod) for pod in items)
        self.write()

    def event(self, kind: str, pod: dict[str, Any]) -> None:
        if kind == "DELETED":
            self.pods.pop(self._key(pod), None)
        elif kind in ("ADDED", "MODIFIED"):
            self.pods[self._key(pod)] = pod
        else:
            return  # BOOKMARK: nothing changed
        self.write()

    def write(self) -> None:
        targets = targets_of(self.pods.values(), self.nodes)
        if targets == self._written:
            return
        # Whole, then renamed: Prometheus never reads half a file.
        partial = self.out.with_suffix(".partial")
        partial.write_text(json.dumps(targets))
        partial.replace(self.out)
        self._written = targets
        log.info("%d pod target(s): %s", len(targets), [t["targets"][0] for t in targets])


async def run(args: argparse.Namespace) -> None:
    targets = PodTargets(frozenset(args.node), args.out)
    kube = KubeSession(current_context(str(args.kubeconfig)))
    # One watch per kubelet node, of that node's pods only: a KWOK platform may run
    # thousands of pods, none of which is ever a target.
    watches = [
        ListWatch(
            kube,
            "/api/v1/pods",
            on_list=functools.partial(targets.listed, node),
            on_event=targets.event,
            params={"fieldSelector": f"spec.nodeName={node}"},
        )
        for node in sorted(targets.nodes)
    ]
    stopping = stop_event()
    tasks = [asyncio.create_task(watch.run()) for watch in watches]
    try:
        await stopping.wait()
    finally:
        for task in tasks:
            task.cancel()
        await kube.close()
        args.out.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--node", action="append", required=True, help="a kubelet node's name")
    parser.add_argument("--out", type=Path, required=True, help="the file_sd file to write")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
