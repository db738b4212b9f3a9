"""The kubelet node's own identity: a client certificate for ``system:node:<name>`` in
group ``system:nodes``, signed by the cluster's CA, as kubeadm's join would issue.

With it the Node authorizer and the NodeRestriction admission plugin apply to the
kubelet for real: it may register and update its own Node and nothing else, and may not
give itself ``node-role.kubernetes.io/*`` labels.
"""

from __future__ import annotations

import datetime
import warnings
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gpuplane.backends.local.pki import issue, new_key, pem_key
from gpuplane.kube.files import user_kubeconfig, write_private

NODE_GROUP = "system:nodes"
VALIDITY = datetime.timedelta(days=365)


def node_user(name: str) -> str:
    return f"system:node:{name}"


def issue_node_certificate(
    ca_cert_pem: bytes, ca_key_pem: bytes, name: str, *, now: datetime.datetime
) -> tuple[bytes, bytes]:
    """A (certificate, private key) pair in PEM for node ``name``, signed by the CA."""
    with warnings.catch_warnings():
        # kwokctl's CA has serial number 0, which RFC 5280 disallows; only its subject
        # is read here (as the issuer of the node's certificate).
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"unsupported CA key type {type(ca_key).__name__}")
    key = new_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, NODE_GROUP),
            x509.NameAttribute(NameOID.COMMON_NAME, node_user(name)),
        ]
    )
    certificate = issue(
        subject, key, issuer=(ca_cert.subject, ca_key),
        usages=(ExtendedKeyUsageOID.CLIENT_AUTH,), now=now, validity=VALIDITY,
    )  # fmt: skip
    key_pem = pem_key(key)
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def write_node_credentials(
    pki: Path,
    kubeconfig: Path,
    *,
    ca_dir: Path,
    admin_kubeconfig: Path,
    name: str,
    now: datetime.datetime,
) -> None:
    """Issue the node's certificate from the CA in ``ca_dir`` and write its kubeconfig;
    key and kubeconfig are readable by their owner only."""
    cert_pem, key_pem = issue_node_certificate(
        (ca_dir / "ca.crt").read_bytes(), (ca_dir / "ca.key").read_bytes(), name, now=now
    )
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    cert_file, key_file = pki / "node-client.crt", pki / "node-client.key"
    cert_file.write_bytes(cert_pem)
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    credentials = {"client-certificate": str(cert_file), "client-key": str(key_file)}
    write_private(kubeconfig, user_kubeconfig(admin_kubeconfig, node_user(name), credentials))
