"""One name per idea: two modules share a file name only when they play the same role.

A newcomer who searches for `cluster.py` and finds three files that do three different
things has to read all three. A name may repeat only where it means the same job in each
package, as `cli.py` does.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The project's own Python: the package, its KFP layer, and the tools beside them.
SOURCE_DIRS = ("landmarks", "components", "pipelines", "scripts", "benchmarks", "images")

# Names that mean the same job wherever they appear; each package may have one.
ROLE_NAMES = {
    # The package itself.
    "__init__": "package",
    # `python -m landmarks.<package>`: what a container's command runs.
    "__main__": "module entry point",
    # A stage's argparse subcommand, which landmarks/cli.py mounts under `landmarks`.
    "cli": "command line",
    # A stage's programmatic entry point, `run_<stage>(<Stage>Options) -> result`; the CLI
    # and the KFP component are thin shells over it.
    "run": "stage entry point",
    # The exception types a layer raises; the storage layer's derive from landmarks.errors'.
    "errors": "exception types",
}

# Names shared by modules that do different things, each waiting for a rename (none today).
# The list may only shrink: the test fails when an entry is no longer true, so a rename
# also removes its line here.
KNOWN_COLLISIONS: dict[str, set[str]] = {}


def modules_by_name(root: Path, dirs: tuple[str, ...]) -> dict[str, set[str]]:
    """File stem -> every module (path relative to `root`) with that stem."""
    found: dict[str, set[str]] = defaultdict(set)
    for top in dirs:
        for path in (root / top).rglob("*.py"):
            found[path.stem].add(path.relative_to(root).as_posix())
    return found


def collisions(found: dict[str, set[str]]) -> dict[str, set[str]]:
    """Names held by two modules or more, role names left out."""
    return {
        name: paths
        for name, paths in sorted(found.items())
        if len(paths) > 1 and name not in ROLE_NAMES
    }


def test_no_two_modules_share_a_name_unless_they_share_a_role() -> None:
    shared = collisions(modules_by_name(ROOT, SOURCE_DIRS))
    new = {name: paths for name, paths in shared.items() if KNOWN_COLLISIONS.get(name) != paths}
    assert not new, "modules that share a name but not a role (rename one):\n" + "\n".join(
        f"  {name}: {', '.join(sorted(paths))}" for name, paths in new.items()
    )
    stale = sorted(set(KNOWN_COLLISIONS) - set(shared))
    assert not stale, f"no longer shared, remove from KNOWN_COLLISIONS: {stale}"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            ["pkg/tfjob/cluster.py", "pkg/train/cluster.py", "tools/cluster.py"],
            {"cluster": {"pkg/tfjob/cluster.py", "pkg/train/cluster.py", "tools/cluster.py"}},
            id="same-name-different-jobs",
        ),
        pytest.param(
            ["pkg/cli.py", "pkg/train/cli.py", "pkg/train/__init__.py", "pkg/__init__.py"],
            {},
            id="role-names",
        ),
    ],
)
def test_name_check_sees_shared_names_across_packages(
    tmp_path: Path, files: list[str], expected: dict[str, set[str]]
) -> None:
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert collisions(modules_by_name(tmp_path, ("pkg", "tools"))) == expected
