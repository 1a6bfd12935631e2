"""Files on local disk; writes go to a temporary file beside the target, renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


class LocalStore:
    def exists(self, uri: str) -> bool:
        return Path(uri).exists()

    def read_bytes(self, uri: str) -> bytes:
        return Path(uri).read_bytes()

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            # mkstemp creates 0600 files; outputs such as reports are meant to be shared.
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def delete(self, uri: str) -> None:
        Path(uri).unlink(missing_ok=True)

    def list_files(self, root: str) -> Iterator[str]:
        base = Path(root)
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file():
                yield path.relative_to(base).as_posix()

    def copy(self, src: str, dst: str, content_type: str | None = None) -> None:
        target = Path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)  # streams: a large model never sits in memory whole
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
