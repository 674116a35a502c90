"""The command line: help, version, and one clear line (exit 2) for a wrong flag."""

import subprocess
import sys

from cvqkd.cli.main import run


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(["--version"]) == 0
    assert "cvqkd" in capsys.readouterr().out


def test_unknown_command_exits_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cvqkd", "no-such-command"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
