"""The kubelet node's identity: a client certificate for system:node:<name> in group
system:nodes, signed by the cluster's CA (verified with the CA's public key), valid from
a little before now, usable for client auth only."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gpuplane.backends.local.kubelet.credentials import issue_node_certificate
from tests.unit.certificates import key_pem, pem, self_signed_ca

NOW = datetime.datetime(2026, 11, 28, 12, 0, tzinfo=datetime.UTC)


def make_ca() -> tuple[bytes, bytes, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return pem(self_signed_ca(key, "test-ca", now=NOW)), key_pem(key), key


def test_node_certificate_identity_and_signature() -> None:
    ca_pem, ca_key_pem, ca_key = make_ca()
    cert_pem, key_pem = issue_node_certificate(ca_pem, ca_key_pem, "agent-0", now=NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "system:node:agent-0"
    )
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "system:nodes"
    )
    assert cert.not_valid_before_utc < NOW < cert.not_valid_after_utc
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # Signed by the CA: verification raises otherwise.
    ca_key.public_key().verify(
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA256()
    )
    assert b"PRIVATE KEY" in key_pem
