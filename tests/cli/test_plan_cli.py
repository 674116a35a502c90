"""``cvqkd plan``: JSON fields, plots written, bad input as one line with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


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
