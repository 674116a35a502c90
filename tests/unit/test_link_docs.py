"""The docstring examples of the link modules and the scenario loader run and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "cvqkd.link.fibre",
    "cvqkd.link.wdm",
    "cvqkd.link.raman",
    "cvqkd.link.fwm",
    "cvqkd.link.leakage",
    "cvqkd.link.phase",
    "cvqkd.link.budget",
    "cvqkd.scenario",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
