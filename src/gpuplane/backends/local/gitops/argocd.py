"""How each GitOps process starts, and Argo CD's settings: pure, no I/O.

Argo CD runs as upstream's own development setup does (its Procfile): every component a
local process of the one multi-call binary, ``ARGOCD_FAKE_IN_CLUSTER`` making the
in-cluster destination (https://kubernetes.default.svc) read a kubeconfig, here the
controller's own least-privilege one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAMESPACE = "argocd"
ROOT_APPLICATION = "platform-root"
# The Applications that need a remote chart repository, kept under a root of their own so
# that an offline source never holds up the sync waves of the rest.
REMOTE_ROOT_APPLICATION = "platform-remote"
PROJECT = "platform"
IN_CLUSTER = "https://kubernetes.default.svc"
# How often the controller compares every Application with git: the change-to-cluster
# latency without a webhook (Argo CD's default is 180 s).
RECONCILIATION_SECONDS = 5


@dataclass(frozen=True)
class GitOpsPorts:
    """Every GitOps listener, on 127.0.0.1."""

    redis: int
    repo_server: int
    repo_server_metrics: int
    controller_metrics: int
    git: int


@dataclass(frozen=True)
class GitOpsPaths:
    directory: Path  # the supervisor's: pid files, logs, data

    @property
    def controller_kubeconfig(self) -> Path:
        return self.directory / "controller.kubeconfig"

    @property
    def redis_password(self) -> Path:
        return self.directory / "redis.password"

    @property
    def redis_data(self) -> Path:
        return self.directory / "redis-data"

    @property
    def repos(self) -> Path:
        """What the git server serves: one link per repository."""
        return self.directory / "repos"

    @property
    def argocd_home(self) -> Path:
        """Argo CD's TLS, SSH and GnuPG data (empty: a loopback repository needs none)."""
        return self.directory / "argocd-home"


def redis_argv(redis_server: str, ports: GitOpsPorts, paths: GitOpsPaths) -> list[str]:
    """Argo CD's cache: loopback, a password, nothing written to disk (a cache)."""
    return [
        redis_server,
        "--bind", "127.0.0.1",
        "--port", str(ports.redis),
        "--protected-mode", "yes",
        "--requirepass", paths.redis_password.read_text().strip(),
        "--save", "",
        "--appendonly", "no",
        "--dir", str(paths.redis_data),
    ]  # fmt: skip


def git_daemon_argv(git: str, ports: GitOpsPorts, paths: GitOpsPaths) -> list[str]:
    """Read-only git over git:// on loopback: upload-pack only, no push."""
    return [
        git, "daemon",
        "--reuseaddr",
        "--listen=127.0.0.1",
        f"--port={ports.git}",
        f"--base-path={paths.repos}",
        "--export-all",
        "--informative-errors",
        str(paths.repos),
    ]  # fmt: skip


def repo_url(ports: GitOpsPorts, name: str) -> str:
    return f"git://127.0.0.1:{ports.git}/{name}.git"


def common_env(
    base: dict[str, str], component: str, paths: GitOpsPaths, redis_password: str
) -> dict[str, str]:
    """The environment of an Argo CD component. KUBECONFIG is the controller's own
    credentials, always: with ARGOCD_FAKE_IN_CLUSTER the in-cluster destination reads it
    (never the caller's admin kubeconfig, nor ~/.kube/config)."""
    home = paths.argocd_home
    inherited = {key: value for key, value in base.items() if key != "KUBECONFIG"}
    return {
        **inherited,
        "KUBECONFIG": str(paths.controller_kubeconfig),
        "ARGOCD_BINARY_NAME": component,
        "ARGOCD_FAKE_IN_CLUSTER": "true",
        "ARGOCD_TLS_DATA_PATH": str(home / "tls"),
        "ARGOCD_SSH_DATA_PATH": str(home / "ssh"),
        "ARGOCD_GNUPGHOME": str(home / "gpg" / "keys"),
        "ARGOCD_GPG_DATA_PATH": str(home / "gpg" / "source"),
        "ARGOCD_GPG_ENABLED": "false",
        "REDIS_PASSWORD": redis_password,
        "HOME": str(home),
        # Never a proxy for loopback traffic.
        "NO_PROXY": "127.0.0.1,localhost",
    }


def repo_server_argv(argocd: str, ports: GitOpsPorts) -> list[str]:
    return [
        argocd,
        "--address", "127.0.0.1",
        "--port", str(ports.repo_server),
        "--metrics-address", "127.0.0.1",
        "--metrics-port", str(ports.repo_server_metrics),
        "--redis", f"127.0.0.1:{ports.redis}",
        # How long a branch or HEAD stays resolved to one commit: Argo CD's default
        # (3 min) would hide a new commit from every reconciliation until it expires.
        "--revision-cache-expiration", f"{RECONCILIATION_SECONDS}s",
        "--loglevel", "info",
    ]  # fmt: skip


def controller_argv(argocd: str, ports: GitOpsPorts, paths: GitOpsPaths) -> list[str]:
    return [
        argocd,
        "--kubeconfig", str(paths.controller_kubeconfig),
        "--namespace", NAMESPACE,
        "--repo-server", f"127.0.0.1:{ports.repo_server}",
        "--redis", f"127.0.0.1:{ports.redis}",
        "--metrics-port", str(ports.controller_metrics),
        "--app-resync", str(RECONCILIATION_SECONDS),
        # A manifest that fails to render is shown after this long (Argo CD's default,
        # 180 s, keeps the last good state on show that long); a shorter hiccup of the
        # repo server is still ignored.
        "--repo-error-grace-period-seconds", "15",
        "--status-processors", "4",
        "--operation-processors", "2",
        "--self-heal-timeout-seconds", "2",
        "--loglevel", "info",
    ]  # fmt: skip


# Argo CD waits for a wave's resources to be Healthy before the next wave; an Application
# has no health of its own since Argo CD 1.8, so without this the root would create every
# child at once and waves would order nothing. Upstream's documented customisation, with
# one addition: a child that is OutOfSync is not done yet. A child whose manifests cannot
# be generated (sync Unknown: a remote source offline, a broken manifest) keeps the health
# Argo CD gives it, so it never holds the other Applications back; its error shows on it.
APPLICATION_HEALTH_LUA = """\
hs = {status = "Progressing", message = ""}
if obj.status ~= nil and obj.status.health ~= nil then
  hs.status = obj.status.health.status
  if obj.status.health.message ~= nil then hs.message = obj.status.health.message end
end
local sync = obj.status ~= nil and obj.status.sync ~= nil and obj.status.sync.status or nil
if hs.status == "Healthy" and (sync == nil or sync == "OutOfSync") then
  hs.status = "Progressing"
  hs.message = "waiting for the Application to be synced"
end
return hs
"""


LABELS = {"app.kubernetes.io/part-of": "argocd"}


def settings() -> dict[str, Any]:
    """argocd-cm: reconciliation period, Application health, an RBAC-aware cache."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "argocd-cm", "namespace": NAMESPACE, "labels": LABELS},
        "data": {
            "resource.customizations.health.argoproj.io_Application": APPLICATION_HEALTH_LUA,
            # The controller may list only the kinds its ClusterRole names: skip the rest
            # instead of failing the cluster cache.
            "resource.respectRBAC": "normal",
            "timeout.reconciliation": f"{RECONCILIATION_SECONDS}s",
        },
    }


def server_secret(key: str) -> dict[str, Any]:
    """argocd-secret, which Argo CD's settings require (made once, then kept)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "argocd-secret", "namespace": NAMESPACE, "labels": LABELS},
        "stringData": {"server.secretkey": key},
    }


def root_application(
    template: dict[str, Any], url: str, revision: str, sources: str, name: str
) -> dict[str, Any]:
    """The root Application of gitops/bootstrap with this repository's URL and revision
    as its source and as the values every child Application reads; ``sources`` picks
    which children (all, local, remote: gitops/apps/values.yaml)."""
    document = copy.deepcopy(template)
    document["metadata"]["name"] = name
    source = document["spec"]["source"]
    source["repoURL"] = url
    source["targetRevision"] = revision
    values = source.setdefault("helm", {}).setdefault("valuesObject", {})
    values.update({"repoURL": url, "targetRevision": revision, "sources": sources})
    return document


def project_with_repository(template: dict[str, Any], url: str) -> dict[str, Any]:
    """The platform AppProject, allowed to read ``url`` too."""
    document = copy.deepcopy(template)
    repos = list(document["spec"].get("sourceRepos") or [])
    if url not in repos:
        repos.append(url)
    document["spec"]["sourceRepos"] = repos
    return document
