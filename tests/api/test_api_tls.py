"""HTTPS with hypercorn (a certificate made here with ``cryptography``; no key is
committed), and the refusal to serve plain HTTP off loopback unless asked."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from aria.api import ServerConfig, serve
from aria.apikeys import KeyStore
from aria.config import AriaPaths
from aria.errors import ConfigError
from aria.p2p.local_api import forward, read_endpoint
from tests.api.conftest import Server, make_node, running

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aria test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def https(
    tmp_path_factory: pytest.TempPathFactory,
    model_files: dict[str, Path],
    certificate: tuple[Path, Path],
) -> Iterator[Server]:
    node = make_node(tmp_path_factory.mktemp("tls_home"), {"tiny": model_files["tiny"]})
    cert, key = certificate
    with running(node, ServerConfig("127.0.0.1", 0, tls_cert=cert, tls_key=key)) as live:
        yield live


def test_an_https_client_with_the_certificate_works(
    https: Server, certificate: tuple[Path, Path]
) -> None:
    assert https.url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    with httpx.Client(base_url=https.url, verify=trusted) as http:
        assert http.get("/health").json()["status"] == "ok"
    with OpenAI(
        base_url=f"{https.url}/v1",
        api_key="unused",
        # The SDK's annotation names its own httpx build; a standard client works as well.
        http_client=httpx.Client(verify=trusted),  # type: ignore[arg-type]
        max_retries=0,
    ) as client:
        reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=3)
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https.url}/health")  # nobody else's trust store knows it
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the TLS port
        httpx.get(https.url.replace("https://", "http://") + "/health", timeout=5)


def test_the_node_reaches_its_own_https_api_through_the_pinned_certificate(
    https: Server,
) -> None:
    endpoint = read_endpoint(https.node.paths)
    assert endpoint is not None and endpoint.tls_cert is not None
    body = {"model": "tiny", "messages": HELLO, "max_tokens": 2, "stream": True}

    async def collect() -> list[str]:
        return [data async for data in forward(https.node.paths, body)]

    chunks = anyio.run(collect, backend="trio")
    assert chunks[-1] == "[DONE]" and len(chunks) >= 3


def test_tls_settings_are_checked(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    with pytest.raises(ConfigError, match="both"):
        ServerConfig("127.0.0.1", 0, tls_cert=cert).check()
    with pytest.raises(ConfigError, match="cannot use the TLS certificate"):
        ServerConfig("127.0.0.1", 0, tls_cert=cert, tls_key=tmp_path / "missing.pem").check()
    with pytest.raises(ConfigError, match="cannot use the TLS certificate"):
        ServerConfig("127.0.0.1", 0, tls_cert=key, tls_key=key).check()
    ServerConfig("0.0.0.0", 0, tls_cert=cert, tls_key=key).check()


def test_plain_http_off_loopback_needs_insecure_http(tmp_path: Path) -> None:
    node = make_node(tmp_path, {})
    KeyStore(node.paths.api).create("lan")
    with pytest.raises(ConfigError, match="--insecure-http"):
        trio.run(lambda: serve(node, ServerConfig("0.0.0.0", 0)))
    config = ServerConfig("0.0.0.0", 0, insecure_http=True)
    with running(node, config) as server:  # the operator chose it (e.g. behind a proxy)
        assert server.url.startswith("http://")
        assert server.http().get("/health").json() == {"status": "ok"}


def _api_start(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aria", "api", "start", "--port", "0", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "ARIA_HOME": str(home)},
        timeout=120,
        check=False,
    )


def test_api_start_off_loopback_without_tls_is_one_line(aria_home: Path) -> None:
    KeyStore(AriaPaths(aria_home).api).create("lan")
    result = _api_start(aria_home, "--host", "0.0.0.0")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--insecure-http" in lines[0] and "tls_cert" in lines[0]


def test_keys_can_be_required_on_loopback(aria_home: Path) -> None:
    result = _api_start(aria_home, "--require-keys")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "requires API keys" in result.stderr and "aria api key create" in result.stderr
