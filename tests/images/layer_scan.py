"""Looks through every layer of saved images for credentials and keys.

A file deleted in an upper layer still ships in the layer that added it, so the scan reads
each layer tar of `docker save`, not the merged filesystem. It looks for:
  - private keys: a PEM `-----BEGIN ... PRIVATE KEY-----` block with a key in it, in any
    file (public certificates, such as the CA bundle, are fine);
  - GCP service-account key files: JSON with `"type": "service_account"`;
  - files that hold credentials by name: `.env`, `env.sh`, SSH private keys (`id_rsa`, ...),
    AWS `credentials`/`config` under `.aws/`, `.netrc`, `.git-credentials`, Docker's
    `config.json` under `.docker/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

# A whole PEM block: header, optional RFC 1421 headers (encrypted legacy keys), at least two
# lines of base64, the matching footer. Lines end in a newline or, inside JSON, in `\n`.
# The markers alone are not enough: parsers and docs carry them (cryptography's ssh.py,
# google-auth's examples, botocore's `<a very long private key string>`, libgnutls).
_EOL = rb"(?:\r?\n|\\n)"
PRIVATE_KEY = re.compile(
    rb"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"
    + _EOL
    + rb"(?:[A-Za-z-]+: [^\r\n\\]*"
    + _EOL
    + rb")*"
    + _EOL
    + rb"?"
    + rb"(?:[A-Za-z0-9+/=]{16,}"
    + _EOL
    + rb"){2,}"
    + rb"-----END \1PRIVATE KEY-----"
)
# Keys that are public on purpose, by the SHA-256 of their PEM block: GnuTLS's power-on
# self-test keys (RSA, DSA, EC P-256, three GOST), compiled into libgnutls30 from
# lib/crypto-selftests-pk.c and present in every Debian bookworm image, the official
# python:*-slim-bookworm included. A key is excused only by its exact bytes, wherever it is.
PUBLIC_TEST_KEYS = {
    "a4d138d7ef9748464117b44fb9c0a4b5b85a1599a127d02690abaa96d03c16e6",
    "fa0b06a72461ec0a963dcfccb8d5b61bd88a6074fc7271573bff68ab86b8c1af",
    "ef237ea8db4f2ae9ee100e8ced96d29b5dceb0e6a948443e6b8a00b1791f9ec9",
    "91ea1699ff6b1a34b4a1d500a9c75a808441e47b9ea68da6fb0195e01ce1dc61",
    "7c4c63ee462e0e700cd9e29c8e0f730b3f1b484c4abdd83f1e69fcd477c061fa",
    "d039c8119a029ab9f9c83c04d67002d887b6bc6026c4264402ab27cdf24cf138",
}
SERVICE_ACCOUNT = re.compile(rb'"type"\s*:\s*"service_account"')
SECRET_NAMES = {
    ".env",
    "env.sh",
    "id_rsa",
    "id_dsa",
    "id_ecdsa",
    "id_ed25519",
    ".netrc",
    ".git-credentials",
}
# (parent directory, name): credentials files whose name alone is too common.
SECRET_PATHS = {(".aws", "credentials"), (".aws", "config"), (".docker", "config.json")}
# Key files are small; the large files (shared libraries, model weights) are skipped so a
# multi-gigabyte TensorFlow image scans in seconds. 4 MiB is far above any key file.
MAX_SCANNED_BYTES = 4 * 1024 * 1024
SAVE_TIMEOUT_S = 900


@dataclass(frozen=True)
class Finding:
    layer: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path} (layer {self.layer[:24]}): {self.reason}"


def scan_layer(layer: str, stream: IO[bytes]) -> list[Finding]:
    """Findings in one layer tar, read as a stream."""
    findings: list[Finding] = []
    with tarfile.open(fileobj=stream, mode="r|*") as tar:
        for member in tar:
            path = PurePosixPath("/", member.name)
            name = path.name
            if name.startswith(".wh."):
                continue  # a whiteout marks a deletion; it holds nothing
            if name in SECRET_NAMES or (path.parent.name, name) in SECRET_PATHS:
                findings.append(Finding(layer, str(path), "a credentials file by its name"))
            if not member.isfile() or member.size > MAX_SCANNED_BYTES:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            data = handle.read()
            if any(
                hashlib.sha256(match.group()).hexdigest() not in PUBLIC_TEST_KEYS
                for match in PRIVATE_KEY.finditer(data)
            ):
                findings.append(Finding(layer, str(path), "a PEM private key"))
            if SERVICE_ACCOUNT.search(data):
                findings.append(Finding(layer, str(path), "a GCP service-account key"))
    return findings


def scan_saved(refs: Iterable[str]) -> dict[str, list[Finding]]:
    """`docker save` the images together (shared layers once) and scan every layer.

    Returns the findings of each image, keyed by the reference as given.
    """
    refs = list(refs)
    proc = subprocess.Popen(["docker", "save", *refs], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    per_layer: dict[str, list[Finding]] = {}
    manifest: list[dict] | None = None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                if member.name == "manifest.json":
                    handle = archive.extractfile(member)
                    assert handle is not None
                    manifest = json.loads(handle.read())
                elif member.isfile() and _may_be_layer(member.name):
                    handle = archive.extractfile(member)
                    assert handle is not None
                    # An OCI config or index blob is no tar: not a layer.
                    with contextlib.suppress(tarfile.ReadError):
                        per_layer[member.name] = scan_layer(member.name, handle)
    finally:
        code = proc.wait(timeout=SAVE_TIMEOUT_S)
    if code != 0:
        raise RuntimeError(f"docker save {' '.join(refs)} exited {code}")
    if manifest is None:
        raise RuntimeError(f"docker save {' '.join(refs)}: no manifest.json in the archive")
    results: dict[str, list[Finding]] = {}
    for entry in manifest:
        layers = entry["Layers"]
        missing = [layer for layer in layers if layer not in per_layer]
        if missing:
            raise RuntimeError(f"docker save: layers listed but not read: {missing}")
        findings = [f for layer in layers for f in per_layer[layer]]
        for tag in entry.get("RepoTags") or []:
            results[tag] = findings
    absent = [ref for ref in refs if ref not in results]
    if absent:
        raise RuntimeError(f"docker save: no manifest entry for {absent}")
    return results


def _may_be_layer(name: str) -> bool:
    # Docker 20.10 writes <id>/layer.tar; newer engines write OCI blobs/sha256/<digest>,
    # of which the manifest's `Layers` are tars and the rest JSON.
    return name.endswith("/layer.tar") or name.startswith("blobs/sha256/")
