"""etcd of a local cluster behind TLS with client authentication: its own CA (not the
cluster's), a serving (and peer) certificate for 127.0.0.1, and ONE client certificate,
the API server's. Without it etcd listened on 127.0.0.1 in plain HTTP: any local user could
read every Secret and write any object (with a kubelet node running as root, own the host).

The files live under the cluster's state (``etcd-pki/``, keys 0600), with the ports chosen
once, so a restarted cluster keeps its etcd where its data says it is.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gpuplane.backends.local.pki import LOOPBACK, issue, new_key, pem_key

VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class EtcdTls:
    directory: Path
    client_port: int
    peer_port: int

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.directory / "etcd.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "etcd.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "apiserver-etcd-client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "apiserver-etcd-client.key"

    @property
    def client_url(self) -> str:
        return f"https://{LOOPBACK}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"https://{LOOPBACK}:{self.peer_port}"


def _write(path: Path, data: bytes, *, private: bool) -> None:
    if private:
        path.touch(mode=0o600)
        path.chmod(0o600)
    path.write_bytes(data)


def issue_etcd_pki(tls: EtcdTls, now: datetime.datetime) -> None:
    """The CA, etcd's serving-and-peer certificate, the API server's client certificate."""
    tls.directory.mkdir(parents=True, exist_ok=True)
    tls.directory.chmod(0o700)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key, server_key, client_key = new_key(), new_key(), new_key()
    ca = issue(name("gpuplane-etcd-ca"), ca_key, issuer=None, usages=(), now=now, validity=VALIDITY)
    signer = (ca.subject, ca_key)
    client_only = (ExtendedKeyUsageOID.CLIENT_AUTH,)
    both = (ExtendedKeyUsageOID.SERVER_AUTH, *client_only)
    server = issue(name("etcd"), server_key, issuer=signer, usages=both, now=now, validity=VALIDITY)
    client = issue(
        name("kube-apiserver-etcd-client"),
        client_key,
        issuer=signer,
        usages=client_only,
        now=now,
        validity=VALIDITY,
    )
    pem = serialization.Encoding.PEM
    _write(tls.ca, ca.public_bytes(pem), private=False)
    _write(tls.server_cert, server.public_bytes(pem), private=False)
    _write(tls.server_key, pem_key(server_key), private=True)
    _write(tls.client_cert, client.public_bytes(pem), private=False)
    _write(tls.client_key, pem_key(client_key), private=True)
    # The CA's key signs nothing more: not kept.


def etcd_arguments(tls: EtcdTls) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """kwokctl extra arguments (etcd's, the API server's): etcd serves and peers on TLS and
    demands a client certificate from its CA; the API server presents the only one."""

    def replaced(key: str, value: str) -> dict[str, object]:
        return {"key": key, "value": value, "override": True}  # kwokctl sets these

    def added(key: str, value: str) -> dict[str, object]:
        return {"key": key, "value": value}

    etcd = [
        replaced("listen-client-urls", tls.client_url),
        replaced("advertise-client-urls", tls.client_url),
        replaced("listen-peer-urls", tls.peer_url),
        replaced("initial-advertise-peer-urls", tls.peer_url),
        replaced("initial-cluster", f"node0={tls.peer_url}"),
        added("cert-file", str(tls.server_cert)),
        added("key-file", str(tls.server_key)),
        added("trusted-ca-file", str(tls.ca)),
        added("client-cert-auth", "true"),
        added("peer-cert-file", str(tls.server_cert)),
        added("peer-key-file", str(tls.server_key)),
        added("peer-trusted-ca-file", str(tls.ca)),
        added("peer-client-cert-auth", "true"),
    ]
    apiserver = [
        replaced("etcd-servers", tls.client_url),
        added("etcd-cafile", str(tls.ca)),
        added("etcd-certfile", str(tls.client_cert)),
        added("etcd-keyfile", str(tls.client_key)),
    ]
    return etcd, apiserver


def etcd_tls(directory: Path, free_port: Callable[[], int], now: datetime.datetime) -> EtcdTls:
    """This cluster's etcd TLS: made once (ports and certificates), then read back."""
    ports_file = directory / "ports.json"
    if ports_file.is_file() and (directory / "ca.crt").is_file():
        ports = json.loads(ports_file.read_text())
        return EtcdTls(directory, int(ports["client"]), int(ports["peer"]))
    tls = EtcdTls(directory, free_port(), free_port())
    issue_etcd_pki(tls, now)
    ports_file.write_text(json.dumps({"client": tls.client_port, "peer": tls.peer_port}))
    return tls
