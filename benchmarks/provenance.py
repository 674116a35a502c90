"""What every benchmark prints beside its figure: the machine and the git commit.

Benchmarks run as scripts (``.venv/bin/python benchmarks/NAME.py``), so this module is imported
as ``from provenance import machine, commit``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine() -> str:
    """One line: OS, CPU model, logical CPUs, Python version and the 1-minute load average."""
    try:
        load = f", load {os.getloadavg()[0]:.1f}"
    except OSError:
        load = ""
    return (
        f"{platform.system()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}{load}"
    )


def commit() -> str:
    """The short git commit the benchmark runs from, ``+dirty`` when a tracked file under src/
    has uncommitted changes (the figure then belongs to no commit; untracked files such as
    caches do not count); 'unknown' outside git. ``CVQKD_COMMIT`` in the environment wins:
    for a copy of the tree whose git metadata is not its own (a lent GPU machine gets the
    working tree with the git state of an older checkout)."""
    if os.environ.get("CVQKD_COMMIT"):
        return os.environ["CVQKD_COMMIT"] + " (from CVQKD_COMMIT)"
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "src"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")
