"""Shared fixtures: reference data from tests/data (never from ../shared)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

DATA_DIR = Path(__file__).parent / "data"


def load_reference(name: str) -> dict[str, Any]:
    """Load a published reference case (with provenance) from tests/data/."""
    with open(DATA_DIR / name, encoding="utf-8") as fh:
        return json.load(fh)  # type: ignore[no-any-return]


@pytest.fixture
def reference():  # type: ignore[no-untyped-def]
    """The loader for reference cases: ``reference("gg02_lodewyck2007.json")``."""
    return load_reference
