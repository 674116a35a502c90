"""The docstring examples of cvqkd.keyrate are true (each quotes a number or an identity)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["gaussian", "bounds", "optimise", "finite_size", "composable", "dv", "discrete"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"cvqkd.keyrate.{name}")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
