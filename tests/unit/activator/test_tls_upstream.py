"""An ``https://`` upstream (loopback, a real aiohttp backend serving TLS with a certificate
made here): the proxy verifies the backend's certificate against the trust store, as any
client should; one it cannot verify is a 503 that says why, never a plaintext fallback."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.activator.proxy_kit import ready_proxy
from tests.unit.certificates import key_pem, pem, self_signed_ca


def self_signed_localhost(directory: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` that is its own CA; its file and its key's."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = self_signed_ca(key, "localhost", now=now, dns_names=("localhost",))
    cert_file, key_file = directory / "backend.crt", directory / "backend.key"
    cert_file.write_bytes(pem(certificate))
    key_file.write_bytes(key_pem(key))
    return cert_file, key_file


def through_tls_backend(cert_file: Path, key_file: Path) -> tuple[int, bytes]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(body=b"over tls " + request.path.encode())

    async def run() -> tuple[int, bytes]:
        serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        serving.load_cert_chain(cert_file, key_file)
        app = web.Application()
        app.router.add_get("/{tail:.*}", hello)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=serving)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            async with (
                ready_proxy(f"https://localhost:{port}") as url,
                aiohttp.ClientSession() as client,
                client.get(f"{url}/b/x") as answer,
            ):
                return answer.status, await answer.read()
        finally:
            await runner.cleanup()

    return asyncio.run(run())


def test_a_tls_backend_the_trust_store_vouches_for_is_proxied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = self_signed_localhost(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # OpenSSL's default trust store
    assert through_tls_backend(cert_file, key_file) == (200, b"over tls /x")


def test_a_tls_backend_that_cannot_be_verified_is_a_503_naming_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = self_signed_localhost(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    status, body = through_tls_backend(cert_file, key_file)
    assert status == 503, body
    assert b"certificate verify failed" in body, body
