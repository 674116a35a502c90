"""Shared fixtures: reference data from tests/data (never from ../shared)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# CI runs the property tests with a fixed example sequence (a red CI is then reproducible and
# never a coin toss); locally they explore new examples on every run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

DATA_DIR = Path(__file__).parent / "data"


def load_reference(name: str) -> dict[str, Any]:
    """Load a published reference case (with provenance) from tests/data/."""
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return json.load(fh)  # type: ignore[no-any-return]


@pytest.fixture
def reference():  # type: ignore[no-untyped-def]
    """The loader for reference cases: ``reference("gg02_lodewyck2007.json")``."""
    return load_reference
