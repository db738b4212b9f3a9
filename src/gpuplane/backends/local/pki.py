"""Certificates the local backend issues itself (a kubelet node's identity, etcd's TLS):
one way to make a key, a self-signed CA and a leaf signed by a CA."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

# Clocks of the host and of a freshly made CA may disagree by a little.
BACKDATE = datetime.timedelta(hours=1)
LOOPBACK = "127.0.0.1"

Signer = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    *,
    issuer: tuple[x509.Name, Signer] | None,
    usages: tuple[x509.ObjectIdentifier, ...],
    now: datetime.datetime,
    validity: datetime.timedelta,
    dns_names: tuple[str, ...] = (),
) -> x509.Certificate:
    """A certificate for ``key``: a CA signed by itself when ``issuer`` is None, else a
    leaf signed by ``issuer`` (its name, its key) for ``usages``; a serving certificate
    names 127.0.0.1, localhost and ``dns_names``."""
    is_ca = issuer is None
    issuer_name, signer = issuer if issuer is not None else (subject, key)
    key_usage = x509.KeyUsage(
        digital_signature=True, key_encipherment=False, content_commitment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=is_ca, crl_sign=is_ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    if ExtendedKeyUsageOID.SERVER_AUTH in usages:
        names: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
            *(x509.DNSName(name) for name in ("localhost", *dns_names)),
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())
