"""``cvqkd plan``: JSON fields, plots written, bad input as one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _cvqkd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvqkd", *args], capture_output=True, text=True, timeout=300
    )


def test_plan_json_and_plots(tmp_path: Path) -> None:
    proc = _cvqkd(
        "plan",
        "seed-120km",
        "--json",
        "--out",
        str(tmp_path),
        "--points",
        "10",
        "--frontier-points",
        "3",
        "--channel-limit",
        "40",
        "--refresh-traffic-gbps",
        "10",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["scenario"] == "seed-120km"
    assert out["key_rate_bits_per_symbol"] > 0  # the default scenario keeps a positive key
    assert len(out["distance_sweep"]["distances_km"]) == 10
    assert set(out["channel_frontier"]["max_channels"]) == {"co", "counter"}
    assert out["refresh"]["keeps_up"] in (True, False)
    for p in out["plots"]:
        assert Path(p).stat().st_size > 1000


def test_plan_unknown_scenario_is_one_line() -> None:
    proc = _cvqkd("plan", "no-such-scenario", "--no-plots")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


_TINY = ("--json", "--no-plots", "--points", "4", "--frontier-points", "2", "--channel-limit", "20")


def test_plan_workers_give_the_serial_answer() -> None:
    serial = _cvqkd("plan", "seed-120km", *_TINY)
    pool = _cvqkd("plan", "seed-120km", *_TINY, "--workers", "2")
    assert serial.returncode == 0 and pool.returncode == 0, pool.stderr
    a, b = json.loads(serial.stdout), json.loads(pool.stdout)
    assert (a.pop("executor"), b.pop("executor")) == ("serial", "process(2)")
    assert a == b  # every point is the same computation: identical JSON


def test_plan_missing_dask_extra_is_an_install_hint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cvqkd.cli.main import run

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    assert run(["plan", "seed-120km", *_TINY, "--dask-scheduler", "local"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'cvqkd[dask]'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_plan_bad_workers_is_one_line() -> None:
    proc = _cvqkd("plan", "seed-120km", *_TINY, "--workers", "0")
    assert proc.returncode == 2
    assert "--workers must be >= 1" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
