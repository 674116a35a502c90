"""Quasi-cyclic lifting of protographs with 4-cycle control.

A protograph (``base[i, j]`` parallel edges between base check ``i`` and base variable ``j``)
is lifted by a factor ``Z``: every base edge becomes a ``Z × Z`` circulant permutation ``P^s``
(row ``t`` of the block has its one in column ``(t + s) mod Z``). Parallel edges in one base
entry get distinct shifts, so the block is a sum of distinct circulants (weight = multiplicity).

Girth control (Fossorier, IEEE Trans. Inf. Theory 50, 1788 (2004), Thm. 2): a closed
non-backtracking walk ``e1 e2 e3 e4`` in the base graph (alternating check/variable) lifts to
4-cycles iff ``s1 − s2 + s3 − s4 ≡ 0 (mod Z)``. :func:`assign_shifts` picks shifts edge by edge
(random order of the candidates, drawn from ``rng``), excluding every value that would close
such a walk with edges already placed — a QC variant of progressive edge growth
(Hu, Eleftheriou & Arnold, IEEE Trans. Inf. Theory 51, 386 (2005)).

Parallel edges: the shifts of one entry differ by values coprime to ``Z``. A column whose only
precode entry is a weight-2 circulant ``I + P^δ`` otherwise carries codewords of weight
``Z / gcd(δ, Z)`` (e.g. 4 bits at ``Z = 500, δ = 125``, which the decoder found).

Edges are in *canonical order*: row-major over the base matrix, each entry repeated by its
multiplicity. Shipped shift tables use this order.

Example
-------
>>> import numpy as np
>>> base = np.array([[1, 1, 1], [1, 1, 1]])
>>> shifts = assign_shifts(base, lifting=7, rng=np.random.default_rng(0))
>>> checks, vars_ = lift_edges(base, shifts, lifting=7)
>>> checks.size, count_4cycles_base(base, shifts, lifting=7)
(42, 0)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError

__all__ = ["assign_shifts", "canonical_edges", "count_4cycles_base", "lift_edges"]


def canonical_edges(base: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Base edges in canonical order: ``(rows, cols)``, row-major, entries repeated.

    >>> canonical_edges([[2, 0], [1, 1]])
    (array([0, 0, 1, 1]), array([0, 0, 0, 1]))
    """
    b = np.asarray(base, dtype=np.int64)
    r, c = np.nonzero(b)
    mult = b[r, c]
    return np.repeat(r, mult).astype(np.int64), np.repeat(c, mult).astype(np.int64)


def lift_edges(
    base: ArrayLike, shifts: ArrayLike, *, lifting: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Expand a protograph with circulant ``shifts`` into the edge lists ``(checks, vars)`` of H.

    Vectorised: ``E_base × Z`` edges built by broadcasting. Check ``i·Z + t`` meets variable
    ``j·Z + (t + s) mod Z`` for each base edge ``(i, j, s)``. Edges come out grouped by base edge.
    """
    rows, cols = canonical_edges(base)
    s = np.asarray(shifts, dtype=np.int64).ravel()
    if s.shape != rows.shape:
        raise ConfigError(f"lifting: {s.size} shifts for {rows.size} base edges")
    z = int(lifting)
    t = np.arange(z, dtype=np.int64)
    checks = (rows[:, None] * z + t[None, :]).ravel()
    vars_ = (cols[:, None] * z + (t[None, :] + s[:, None]) % z).ravel()
    return checks, vars_


def _forbidden(
    e: int,
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    shifts: NDArray[np.int64],
    row_edges: list[list[int]],
    col_edges: list[list[int]],
    z: int,
) -> NDArray[np.bool_]:
    """Shift values for edge ``e`` that would close a 4-cycle with the placed edges."""
    r, c = int(rows[e]), int(cols[e])
    bad = np.zeros(z, dtype=bool)
    vals: list[int] = []
    # walks e, e2 (r2, c), e3 (r2, c2), e4 (r, c2): s ≡ s2 − s3 + s4
    for e4 in row_edges[r]:
        c2 = int(cols[e4])
        s4 = int(shifts[e4])
        for e3 in col_edges[c2]:
            if e3 == e4:
                continue
            r2 = int(rows[e3])
            s3 = int(shifts[e3])
            for e2 in row_edges[r2]:
                if e2 == e3 or cols[e2] != c:
                    continue
                vals.append(int(shifts[e2]) - s3 + s4)
    if vals:
        bad[np.asarray(vals, dtype=np.int64) % z] = True
    # walks that use e twice (all four edges in the entry (r, c)): 2s ≡ s2 + s4
    par = [int(shifts[x]) for x in row_edges[r] if cols[x] == c]
    if par:
        cand = np.arange(z, dtype=np.int64)
        for s2 in par:
            for s4 in par:
                bad |= (2 * cand - s2 - s4) % z == 0
            # a weight-2 circulant I + P^δ has kernel vectors of period gcd(δ, Z), i.e. of
            # weight Z / gcd(δ, Z): keep δ coprime to Z so that the lightest has weight Z
            bad |= np.gcd((cand - s2) % z, z) != 1
    return bad


def assign_shifts(
    base: ArrayLike,
    *,
    lifting: int,
    rng: np.random.Generator,
    fixed: ArrayLike | None = None,
) -> NDArray[np.int64]:
    """Circulant shifts (canonical edge order) for a lifting free of 4-cycles.

    ``fixed`` (optional, canonical order, ``-1`` = free) pins shifts, e.g. ``0`` for the
    identity blocks of degree-one columns. Edges of degree-one columns can lie on no cycle and
    get shift 0 unless pinned. Raises :class:`ConfigError` if ``lifting`` is too small for a
    4-cycle-free choice.
    """
    b = np.asarray(base, dtype=np.int64)
    rows, cols = canonical_edges(b)
    z = int(lifting)
    n_e = rows.size
    shifts = np.full(n_e, -1, dtype=np.int64)
    col_deg = b.sum(axis=0)
    if fixed is not None:
        f = np.asarray(fixed, dtype=np.int64).ravel()
        if f.shape != shifts.shape:
            raise ConfigError("lifting: 'fixed' must have one entry per base edge")
        shifts[f >= 0] = f[f >= 0] % z
    deg1 = (col_deg[cols] == 1) & (shifts < 0)
    shifts[deg1] = 0
    row_edges: list[list[int]] = [[] for _ in range(b.shape[0])]
    col_edges: list[list[int]] = [[] for _ in range(b.shape[1])]
    for e in np.flatnonzero(shifts >= 0):
        row_edges[rows[e]].append(int(e))
        col_edges[cols[e]].append(int(e))
    todo = np.flatnonzero(shifts < 0)
    # high-degree columns first: they are the hardest to place
    todo = todo[np.argsort(-col_deg[cols[todo]], kind="stable")]
    for e in todo:
        bad = _forbidden(int(e), rows, cols, shifts, row_edges, col_edges, z)
        free = np.flatnonzero(~bad)
        if free.size == 0:
            raise ConfigError(
                f"lifting {z} is too small for a 4-cycle-free lifting of this protograph"
            )
        shifts[e] = int(free[rng.integers(free.size)])
        row_edges[rows[e]].append(int(e))
        col_edges[cols[e]].append(int(e))
    return shifts


def count_4cycles_base(base: ArrayLike, shifts: ArrayLike, *, lifting: int) -> int:
    """Number of closed non-backtracking base walks of length 4 that lift to 4-cycles.

    Brute force over every walk ``e1 (r, c), e2 (r2, c), e3 (r2, c2), e4 (r, c2)`` with
    consecutive edges distinct (an independent check of :func:`assign_shifts`; each lifted
    4-cycle family is counted once per walk orientation). Edges of degree-one columns lie on
    no cycle and are skipped.
    """
    b = np.asarray(base, dtype=np.int64)
    rows, cols = canonical_edges(b)
    s = np.asarray(shifts, dtype=np.int64).ravel()
    z = int(lifting)
    col_deg = b.sum(axis=0)
    live = [e for e in range(rows.size) if col_deg[cols[e]] > 1]
    by_entry: dict[tuple[int, int], list[int]] = {}
    by_row: dict[int, list[int]] = {}
    by_col: dict[int, list[int]] = {}
    for e in live:
        r, c = int(rows[e]), int(cols[e])
        by_entry.setdefault((r, c), []).append(e)
        by_row.setdefault(r, []).append(e)
        by_col.setdefault(c, []).append(e)
    count = 0
    for e1 in live:
        r, c = int(rows[e1]), int(cols[e1])
        for e2 in by_col[c]:
            if e2 == e1:
                continue
            r2 = int(rows[e2])
            for e4 in by_row[r]:
                if e4 == e1:
                    continue
                c2 = int(cols[e4])
                for e3 in by_entry.get((r2, c2), ()):
                    if e3 != e2 and e3 != e4 and (s[e1] - s[e2] + s[e3] - s[e4]) % z == 0:
                        count += 1
    return count
