"""Drive kwokctl (binary runtime) with our binaries, on loopback, in our state dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from gpuplane.backends.local.etcd_tls import EtcdTls, etcd_arguments
from gpuplane.backends.local.kwok_nodes import KWOK_ANNOTATION
from gpuplane.backends.local.state import LocalState
from gpuplane.commands import run_command

CREATE_TIMEOUT_SECONDS = 300.0
COMMAND_TIMEOUT_SECONDS = 120.0


def kwokctl_configuration(
    binaries: dict[str, Path],
    kubernetes_version: str,
    etcd_version: str,
    pki: Path,
    etcd: EtcdTls | None = None,
) -> dict[str, object]:
    """Our KwokctlConfiguration: the binary runtime on 127.0.0.1 with local binaries.

    Authorization and admission are on, so RBAC and Pod Security behave as on a real
    cluster; the API server serves HTTPS with client certificates; with ``etcd``, etcd
    too, and only the API server's certificate gets in.
    """
    configuration: dict[str, Any] = {
        "kind": "KwokctlConfiguration",
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "options": {
            "runtime": "binary",
            "bindAddress": "127.0.0.1",
            "securePort": True,
            "kubeAuthorization": True,
            "kubeAdmission": True,
            "kubeVersion": kubernetes_version,
            "etcdVersion": etcd_version.removeprefix("v"),
            "kubeApiserverBinary": str(binaries["kube-apiserver"]),
            "kubeControllerManagerBinary": str(binaries["kube-controller-manager"]),
            "kubeSchedulerBinary": str(binaries["kube-scheduler"]),
            "etcdBinary": str(binaries["etcd"]),
            "kwokControllerBinary": str(binaries["kwok"]),
            # kwokctl waits up to 2 minutes for `kubectl get --raw /version` after create;
            # without a kubectl of ours it looks for one on PATH or downloads one (an
            # offline host waits out the whole 2 minutes).
            "kubectlBinary": str(binaries["kubectl"]),
        },
        "componentsPatches": [
            {
                # KWOK must keep its hands off kubelet nodes: it would otherwise write their
                # status and mark their pods Running or Succeeded, whatever the container
                # did. It manages only the nodes registered with its annotation.
                "name": "kwok-controller",
                "extraArgs": [
                    {"key": "manage-all-nodes", "value": "false", "override": True},
                    {
                        "key": "manage-nodes-with-annotation-selector",
                        "value": f"{KWOK_ANNOTATION}=fake",
                    },
                ],
            },
            {
                "name": "kube-apiserver",
                "extraArgs": [
                    # NodeRestriction: a kubelet may change only its own Node and pods,
                    # and may not label itself node-role.kubernetes.io/*.
                    {"key": "enable-admission-plugins", "value": "NodeRestriction"},
                    # Logs and exec reach a kubelet node at its InternalIP, with the
                    # admin certificate the kubelet's x509 authenticator trusts.
                    {"key": "kubelet-preferred-address-types", "value": "InternalIP"},
                    {"key": "kubelet-client-certificate", "value": str(pki / "admin.crt")},
                    {"key": "kubelet-client-key", "value": str(pki / "admin.key")},
                ],
            },
        ],
    }
    if etcd is not None:
        etcd_args, apiserver_args = etcd_arguments(etcd)
        configuration["options"]["etcdPort"] = etcd.client_port
        configuration["options"]["etcdPeerPort"] = etcd.peer_port
        configuration["componentsPatches"].append({"name": "etcd", "extraArgs": etcd_args})
        for patch in configuration["componentsPatches"]:
            if patch["name"] == "kube-apiserver":
                patch["extraArgs"] += apiserver_args
    return configuration


class Kwokctl:
    def __init__(self, binary: Path, state: LocalState) -> None:
        self._binary = binary
        self._state = state

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KWOK_WORKDIR"] = str(self._state.kwok_workdir)
        # kwokctl must never touch the user's ~/.kube/config.
        env["KUBECONFIG"] = str(self._state.kubeconfig)
        return env

    def run(self, args: list[str], *, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        return run_command(
            [str(self._binary), "--config", str(self._state.kwok_config), *args],
            env=self._env(),
            timeout=timeout,
            what=f"kwokctl {' '.join(args)}",
            hint=f"logs: {self._state.logs}",
        )

    def write_config(self, configuration: dict[str, object]) -> None:
        self._state.directory.mkdir(parents=True, exist_ok=True)
        self._state.kwok_config.write_text(yaml.safe_dump(configuration), encoding="utf-8")

    def create(self) -> None:
        """Create and start the cluster's processes; readiness is awaited by the caller.

        No ``--wait``: the caller polls /readyz itself and registers nodes the moment the
        API answers, while the controller-manager is still starting.
        """
        self.run(
            [
                "create", "cluster",
                "--name", self._state.name,
                "--kubeconfig", str(self._state.kubeconfig),
            ],
            timeout=CREATE_TIMEOUT_SECONDS,
        )  # fmt: skip

    def start(self) -> None:
        self.run(
            ["start", "cluster", "--name", self._state.name],
            timeout=CREATE_TIMEOUT_SECONDS,
        )

    def delete(self) -> None:
        self.run(
            [
                "delete",
                "cluster",
                "--name",
                self._state.name,
                "--kubeconfig",
                str(self._state.kubeconfig),
            ]
        )
