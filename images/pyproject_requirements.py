"""Print one requirement list of pyproject.toml, one per line, for `pip install -r`.

The image builds install the pinned dependencies from these lists before the package
source enters the build, so a change to `landmarks/` (or to the version or the README)
reuses the dependency layers; the package itself follows with `--no-deps`.

    python pyproject_requirements.py PYPROJECT build-system | base | EXTRA...
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(path: Path, which: list[str]) -> list[str]:
    pyproject = tomllib.loads(path.read_text())
    if which == ["build-system"]:
        return list(pyproject["build-system"]["requires"])
    lines = list(pyproject["project"]["dependencies"])
    extras = pyproject["project"].get("optional-dependencies", {})
    for name in which:
        if name == "base":
            continue
        if name not in extras:
            raise SystemExit(
                f"{path}: no optional-dependencies extra {name!r} "
                f"(has {', '.join(sorted(extras)) or 'none'})"
            )
        lines += extras[name]
    return lines


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: " + __doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    print("\n".join(requirements(Path(argv[0]), argv[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
