"""Output helpers shared by the sub-commands: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: Human output goes to stdout; diagnostics and errors to stderr.
console = Console()
error_console = Console(stderr=True)


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, dataclasses and non-finite floats into JSON-safe values.

    Non-finite floats become ``null`` (JSON has no NaN/Infinity).
    """
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout (the machine-readable ``--json`` output)."""
    sys.stdout.write(json.dumps(to_jsonable(obj), indent=2) + "\n")
    sys.stdout.flush()


def format_number(value: Any, digits: int = 4) -> str:
    """Human formatting: integers as is, floats with ``digits`` significant figures."""
    if isinstance(value, (bool, str)) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e6):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> None:
    """Print a rich table with ``columns`` headings and formatted ``rows``."""
    table = Table(title=escape(title), title_justify="left")
    for i, col in enumerate(columns):
        table.add_column(escape(col), justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(escape(format_number(v)) for v in row))
    if console.is_terminal:
        console.print(table)
        return
    # a pipe or a file: print the whole table, not one squeezed into 80 columns
    from rich.measure import Measurement

    wide = Measurement.get(console, console.options.update(max_width=1000), table).maximum
    Console(width=max(console.width, wide)).print(table)
