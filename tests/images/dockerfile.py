"""A small reader of images/Dockerfile: stages, their instructions, and what they inherit.

Enough of the Dockerfile grammar for the checks here (continuation lines, comments,
`FROM ... AS`, global ARG defaults); Docker itself cannot run on the test machines.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "Dockerfile"


@dataclass
class Stage:
    name: str
    base: str  # as written, after substituting global ARG defaults
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def own(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    directives: dict[str, str]
    global_args: dict[str, str]
    stages: dict[str, Stage]

    def parent(self, stage: Stage) -> Stage | None:
        return self.stages.get(stage.base)

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, base first."""
        stages: list[Stage] = []
        stage: Stage | None = self.stages[name]
        while stage is not None:
            stages.insert(0, stage)
            stage = self.parent(stage)
        return stages

    def env(self, name: str) -> dict[str, str]:
        """ENV in effect in a stage, inherited ones included."""
        env: dict[str, str] = {}
        for stage in self.chain(name):
            for args in stage.own("ENV"):
                for pair in shlex.split(args):
                    key, _, value = pair.partition("=")
                    env[key] = value
        return env

    def user(self, name: str) -> str | None:
        users = [u for stage in self.chain(name) for u in stage.own("USER")]
        return users[-1] if users else None

    def external_bases(self) -> list[str]:
        """Base images that are not stages of this file."""
        return [s.base for s in self.stages.values() if s.base not in self.stages]


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not current:
            lines.append(stripped)  # a comment (or parser directive) on its own
            continue
        if stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        if current:
            lines.append(current)
        current = ""
    return lines


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), value)


def parse(path: Path = DOCKERFILE) -> Dockerfile:
    directives: dict[str, str] = {}
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    in_header = True
    for line in _logical_lines(path.read_text()):
        if line.startswith("#"):
            match = re.match(r"#\s*(\w+)=(\S+)$", line)
            if in_header and match:
                directives[match[1].lower()] = match[2]
            continue
        in_header = False
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            parts = args.split()
            base = _substitute(parts[0], global_args)
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stage = stages[name] = Stage(name, base)
            continue
        if stage is None:
            if keyword == "ARG":
                key, _, default = args.partition("=")
                global_args[key] = _substitute(default, global_args)
            continue
        stage.instructions.append((keyword, args))
    return Dockerfile(directives, global_args, stages)
