"""The layer scanner on in-memory layer tars: real keys are found, key-shaped text is not.

No Docker needed; test_image_hygiene.py runs the same scanner over the built images.
"""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.images.layer_scan import Finding, scan_layer


def _layer(files: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _scan(files: dict[str, bytes]) -> set[tuple[str, str]]:
    findings: list[Finding] = scan_layer("layer", _layer(files))
    return {(f.path, f.reason) for f in findings}


def _rsa_pkcs8() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ec_traditional_encrypted() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"passphrase"),
    )


def test_real_private_keys_are_found_in_any_file() -> None:
    rsa_pem = _rsa_pkcs8()
    found = _scan(
        {
            "opt/app/tls.pem": rsa_pem,
            "opt/app/legacy.key": _ec_traditional_encrypted(),
            # A key inside JSON: newlines escaped as `\n`.
            "srv/config.json": json.dumps({"key": rsa_pem.decode()}).encode(),
            "usr/lib/libsomething.so": b"\x00\x01" * 100 + rsa_pem + b"\x00" * 100,
        }
    )
    assert found == {
        ("/opt/app/tls.pem", "a PEM private key"),
        ("/opt/app/legacy.key", "a PEM private key"),
        ("/srv/config.json", "a PEM private key"),
        ("/usr/lib/libsomething.so", "a PEM private key"),
    }


@pytest.mark.parametrize(
    "text",
    [
        # What parsers and docs in the images' own dependencies hold (the scanner's first
        # version flagged every one of these).
        b'_SK_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"',
        b'"PrivateKey": "-----BEGIN DSA PRIVATE KEY-----<a very long private key string>'
        b'-----END DSA PRIVATE KEY-----"',
        b'"private_key": "-----BEGIN EC PRIVATE KEY-----\\n<key bytes>\\n'
        b'-----END EC PRIVATE KEY-----\\n"',
        b"\x00\x00-----BEGIN PRIVATE KEY-----\x00\x00-----END PRIVATE KEY-----\x00",
        # A public certificate, as in the CA bundle.
        b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUX1\nQ2x3Y4Z5a6b7c8d9e0f1g2h3\n"
        b"-----END CERTIFICATE-----\n",
    ],
)
def test_key_shaped_text_without_a_key_is_not_a_finding(text: bytes) -> None:
    assert _scan({"usr/lib/python3/site-packages/pkg/module.py": text}) == set()


def test_service_account_keys_and_credential_files_are_found() -> None:
    found = _scan(
        {
            "home/u/key.json": b'{"type": "service_account", "project_id": "p"}',
            "root/.ssh/id_ed25519": b"",
            "app/.env": b"A=1\n",
            "app/env.sh": b"export A=1\n",
            "root/.aws/credentials": b"[default]\n",
            "tmp/.docker/config.json": b"{}",
            "usr/share/doc/credentials": b"a file that only shares the name",
            "app/.wh.id_rsa": b"",  # a whiteout: a deletion, not a file
        }
    )
    assert found == {
        ("/home/u/key.json", "a GCP service-account key"),
        ("/root/.ssh/id_ed25519", "a credentials file by its name"),
        ("/app/.env", "a credentials file by its name"),
        ("/app/env.sh", "a credentials file by its name"),
        ("/root/.aws/credentials", "a credentials file by its name"),
        ("/tmp/.docker/config.json", "a credentials file by its name"),
    }
