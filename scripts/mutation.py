"""Mutation testing of the modules whose results users read, with a score per module.

`make mutation` runs this. mutmut (pinned in pyproject's dev extra, configured under
[tool.mutmut]) copies `landmarks/` and `tests/` into `mutants/`, mutates the files listed in
`only_mutate`, and runs for each mutant only the selected tests that reach the mutated
function. This script picks the functions of each module (GROUPS), runs mutmut on those
mutants alone, then reads mutmut's per-file results and prints killed / total per module.

A mutant counts as killed when a test fails (or times out) with it in place; "no tests"
(no selected test reaches the function) and "survived" both count against the score.
Exit status 1 when a module scores below --min-score.

    python scripts/mutation.py              # run mutmut, then report
    python scripts/mutation.py --report     # report the last run only
    python scripts/mutation.py --survivors  # also list each surviving mutant

Survivors of the last full run, each judged equivalent (no input can tell it apart):
- metrics `_as_labels` 22/24/25: `astype(copy=...)` changed or dropped; same values.
- metrics `global_average_precision` 51, `top_k_indices` 24: `kind="STABLE"`; numpy reads
  sort kinds case-insensitively. `top_k_indices` 19: `axis=1` dropped; -1 is 1 for the 2-D
  input it enforces.
- metrics `precision_recall` 41-44: `np.errstate(...)` changed; `np.maximum(x, 1)` already
  keeps every denominator at 1 or more.
- plan `allocate` 54: `-= 2`; the refill loop after it gives the extra one back.
- plan `plan_split` 14 and 60: `>=` for `>` at exactly top_k / max_per_class; the same set
  is kept and nothing is counted as dropped.
- tf_config `parse_tf_config` 66: the default "WORKER" is lower-cased on the same line.
- results `job_succeeded` 1 (the default policy string) and 17/19 (`.get(..., None)`): only
  "AllWorkers" changes the rule, and `None` and `[]` are treated alike on the next line.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOG = REPO / "build" / "mutation.log"

# Module -> the mutant names (fnmatch globs) that belong to it. mutmut names a mutant
# `<module>.x_<function>__mutmut_<n>`, or `<module>.xǁ<Class>ǁ<method>__mutmut_<n>`.
# Where only part of a file computes the result, only that part is listed.
GROUPS: dict[str, tuple[str, ...]] = {
    "evaluate.metrics (GAP, top-k)": ("landmarks.evaluate.metrics.*",),
    "split.plan (the split plan)": ("landmarks.split.plan.*",),
    "train.tf_config (TF_CONFIG read by the trainer)": ("landmarks.train.tf_config.*",),
    "tfjob.local_executor tf_config (TF_CONFIG the local executor writes)": (
        "landmarks.tfjob.local_executor.x_tf_config__mutmut_*",
    ),
    "tfjob.results (conditions / exit codes -> JobResult)": ("landmarks.tfjob.results.*",),
}

KILLED = {"killed", "timeout", "caught by type check"}


def run_mutmut(max_children: int) -> int:
    # A fresh copy each run: mutmut may keep a mutant's old result when only a test changed.
    shutil.rmtree(REPO / "mutants", ignore_errors=True)
    globs = [g for patterns in GROUPS.values() for g in patterns]
    mutmut = Path(sys.executable).with_name("mutmut")
    cmd = [str(mutmut), "run", "--max-children", str(max_children), *globs]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # mutmut redraws its progress line and then lists every mutant: keep that in a log.
    LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"mutmut: {len(globs)} mutant patterns, {max_children} test process(es); log: {LOG}")
    with LOG.open("w") as log:
        return subprocess.run(
            cmd, cwd=REPO, env=env, stdout=log, stderr=log, check=False
        ).returncode


def load_statuses() -> dict[str, str]:
    """Mutant name -> mutmut's status, from the `.meta` files of the last run."""
    from mutmut.stats import status_by_exit_code  # mutmut's own exit-code meanings

    statuses: dict[str, str] = {}
    for meta in (REPO / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        for name, code in data.get("exit_code_by_key", {}).items():
            statuses[name] = status_by_exit_code[code]
    return statuses


def report(statuses: dict[str, str], min_score: float, survivors: bool) -> int:
    failing = 0
    width = max(len(g) for g in GROUPS)
    print(f"{'module':<{width}}  mutants  killed  survived  no-tests  score")
    for group, patterns in GROUPS.items():
        names = sorted(n for n in statuses if any(fnmatch.fnmatch(n, p) for p in patterns))
        counts = Counter(statuses[n] for n in names)
        checked = len(names) - counts["skipped"] - counts["not checked"]
        killed = sum(counts[s] for s in KILLED)
        if not names:
            print(f"{group:<{width}}  no mutants: is the module in [tool.mutmut] only_mutate?")
            failing += 1
            continue
        score = 100.0 * killed / checked if checked else 0.0
        print(
            f"{group:<{width}}  {len(names):7d}  {killed:6d}  {counts['survived']:8d}  "
            f"{counts['no tests']:8d}  {score:5.1f}%"
        )
        if score < min_score:
            failing += 1
        if survivors:
            for name in names:
                if statuses[name] not in KILLED:
                    print(f"    {statuses[name]:<9} {name}")
    if failing:
        print(f"{failing} module(s) below {min_score:.0f}% (see `mutmut show <name>`)")
    return 1 if failing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", action="store_true", help="report the last run only")
    parser.add_argument("--survivors", action="store_true", help="list surviving mutants")
    parser.add_argument("--min-score", type=float, default=80.0)
    # The machines are shared: one test process at a time unless asked for more.
    parser.add_argument("--max-children", type=int, default=1)
    args = parser.parse_args()
    if not args.report:
        code = run_mutmut(args.max_children)
        if code != 0:
            print(f"mutmut run exited {code}; see {LOG}", file=sys.stderr)
            return code
    return report(load_statuses(), args.min_score, args.survivors)


if __name__ == "__main__":
    sys.exit(main())
