"""What ``gpuplane gitops status`` says of each Application: pure, from the Application
objects Argo CD writes (and which workloads run on KWOK nodes)."""

from __future__ import annotations

import re
from typing import Any

from gpuplane.backends.base import ApplicationStatus

# What a fetch of a remote source says when this host reaches no network: DNS or
# connection failures, as Argo CD's repo server reports them.
_OFFLINE = re.compile(
    r"no such host|dial tcp|i/o timeout|network is unreachable|connection refused"
    r"|Temporary failure in name resolution|could not resolve host",
    re.IGNORECASE,
)
MESSAGE_WIDTH = 160


def sources_of(application: dict[str, Any]) -> list[dict[str, Any]]:
    spec = application.get("spec") or {}
    if spec.get("sources"):
        return list(spec["sources"])
    return [spec["source"]] if spec.get("source") else []


def remote_urls(application: dict[str, Any], local_url: str) -> list[str]:
    """The sources of ``application`` that are not the loopback repository."""
    return [s["repoURL"] for s in sources_of(application) if s.get("repoURL") != local_url]


def error_messages(application: dict[str, Any]) -> list[str]:
    status = application.get("status") or {}
    messages = [
        str(condition.get("message", ""))
        for condition in status.get("conditions") or []
        if str(condition.get("type", "")).endswith("Error")
    ]
    operation = status.get("operationState") or {}
    if operation.get("phase") in ("Failed", "Error"):
        messages.append(str(operation.get("message", "")))
    return [message for message in messages if message]


def row_of(
    application: dict[str, Any], local_url: str, simulated_workloads: bool = False
) -> ApplicationStatus:
    status = application.get("status") or {}
    sync = status.get("sync") or {}
    health = status.get("health") or {}
    errors = error_messages(application)
    remote = remote_urls(application, local_url)
    note = ""
    health_status = str(health.get("status") or "Unknown")
    if remote and any(_OFFLINE.search(message) for message in errors):
        note = "source unreachable offline (" + ", ".join(remote) + ")"
        # Argo CD calls an Application with no target state Healthy: nothing of it runs.
        health_status = "Unknown"
    elif simulated_workloads:
        note = "simulated: its pods run on KWOK nodes (scheduled, marked Running, never executed)"
    revision = str(sync.get("revision") or "")
    return ApplicationStatus(
        name=str(application["metadata"]["name"]),
        sync=str(sync.get("status") or "Unknown"),
        health=health_status,
        revision=revision[:12],
        message=_one_line(errors[0] if errors else str(health.get("message") or "")),
        note=note,
    )


def _one_line(text: str) -> str:
    """The most specific part of an Argo CD error on one line: its messages nest gRPC
    wrappers ("rpc error: code = Unknown desc = ...") around the cause, which comes last."""
    flat = " ".join(text.split())
    if "desc = " in flat:
        flat = flat.rsplit("desc = ", 1)[1]
    return flat if len(flat) <= MESSAGE_WIDTH else flat[: MESSAGE_WIDTH - 1] + "…"


def workloads_of(application: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of the Deployments, DaemonSets and Jobs Argo CD reports for
    ``application``: the objects whose pods say whether it runs for real."""
    status = application.get("status") or {}
    return [
        (str(r["kind"]), str(r.get("namespace", "")), str(r["name"]))
        for r in status.get("resources") or []
        if r.get("kind") in ("Deployment", "DaemonSet", "Job", "StatefulSet")
    ]
