"""Sparse parity-check matrices for LDPC codes: the :class:`LdpcCode` container.

A binary LDPC code is given by its parity-check matrix ``H`` (``n_checks × n_vars`` over GF(2)).
:class:`LdpcCode` holds the Tanner graph twice, once by rows (CSR: checks → variables, the
"edge order" that decoders use for their messages) and once by columns (CSC: variables →
checks), plus the permutation between the two orders, so that a decoder can walk the graph in
either direction without searching.

Edge ``e`` (``0 <= e < n_edges``) is the ``e``-th entry of the CSR arrays: it joins check
``c`` (``check_ptr[c] <= e < check_ptr[c + 1]``) and variable ``check_vars[e]``. The CSC
arrays list the same edges by variable: position ``p`` with ``var_ptr[v] <= p < var_ptr[v+1]``
is edge ``var_edges[p]`` of check ``var_checks[p]``.

Example
-------
>>> import numpy as np
>>> code = LdpcCode.from_dense(np.array([[1, 1, 0, 1], [0, 1, 1, 1]]))
>>> code.n_vars, code.n_checks, code.n_edges, code.rate
(4, 2, 6, 0.5)
>>> code.syndrome(np.array([1, 0, 0, 1], dtype=np.uint8)).tolist()
[0, 1]
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import DataFormatError

__all__ = ["LdpcCode", "first_touch_order", "random_regular"]


def _readonly(a: NDArray[np.generic]) -> NDArray[np.generic]:
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class LdpcCode:
    """A binary LDPC code as a Tanner graph, stored by rows (CSR) and by columns (CSC).

    Build it with :meth:`from_edges`, :meth:`from_dense` or :meth:`read_alist`; the
    constructor checks that the arrays are consistent. All arrays are read-only.

    Attributes
    ----------
    n_vars, n_checks:
        Block length ``n`` and number of parity checks ``m``.
    check_ptr:
        ``int64[m + 1]``: edges of check ``c`` are ``check_ptr[c]:check_ptr[c + 1]``.
    check_vars:
        ``int32[E]``: the variable of each edge (CSR / edge order), ascending within a check.
    var_ptr:
        ``int64[n + 1]``: CSC positions of variable ``v`` are ``var_ptr[v]:var_ptr[v + 1]``.
    var_checks:
        ``int32[E]``: the check at each CSC position, ascending within a variable.
    var_edges:
        ``int64[E]``: the edge index (CSR order) at each CSC position; a permutation.
    edge_checks:
        ``int32[E]``: the check of each edge (CSR order), i.e. ``check_ptr`` expanded.
    name:
        Free-form label (e.g. ``"met-r0.02-n1e6"``).
    """

    n_vars: int
    n_checks: int
    check_ptr: NDArray[np.int64]
    check_vars: NDArray[np.int32]
    var_ptr: NDArray[np.int64]
    var_checks: NDArray[np.int32]
    var_edges: NDArray[np.int64]
    edge_checks: NDArray[np.int32]
    name: str = ""

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_edges(self) -> int:
        """Number of edges ``E`` (ones in ``H``)."""
        return int(self.check_vars.shape[0])

    @property
    def rate(self) -> float:
        """Design rate ``1 − m/n`` (equals the true rate when ``H`` has full row rank)."""
        return 1.0 - self.n_checks / self.n_vars

    @property
    def check_degrees(self) -> NDArray[np.int64]:
        """Degree of each check node (``int64[m]``)."""
        return np.diff(self.check_ptr)

    @property
    def var_degrees(self) -> NDArray[np.int64]:
        """Degree of each variable node (``int64[n]``)."""
        return np.diff(self.var_ptr)

    # ------------------------------------------------------------------ operations
    def syndrome(self, bits: ArrayLike) -> NDArray[np.uint8]:
        """Syndrome ``H·x mod 2`` of one word (``[n]``) or a batch of words (``[frames, n]``).

        Returns ``uint8[m]`` or ``uint8[frames, m]``. Vectorised: a cumulative XOR along the
        edge order, differenced at the row boundaries (correct for empty rows too).
        """
        x = np.asarray(bits)
        if x.shape[-1] != self.n_vars:
            raise DataFormatError(
                f"word length {x.shape[-1]} does not match the code length {self.n_vars}"
            )
        x = (x.astype(np.uint8, copy=False) & 1).astype(np.uint8, copy=False)
        gathered = x[..., self.check_vars]
        acc = np.bitwise_xor.accumulate(gathered, axis=-1)
        pad = np.zeros((*acc.shape[:-1], 1), dtype=np.uint8)
        acc = np.concatenate([pad, acc], axis=-1)
        out = np.asarray(acc[..., self.check_ptr[1:]] ^ acc[..., self.check_ptr[:-1]], np.uint8)
        return out

    def to_dense(self) -> NDArray[np.uint8]:
        """The parity-check matrix as a dense ``uint8[m, n]`` array (small codes only)."""
        h = np.zeros((self.n_checks, self.n_vars), dtype=np.uint8)
        h[self.edge_checks, self.check_vars] = 1
        return h

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_edges(
        cls,
        n_vars: int,
        n_checks: int,
        checks: ArrayLike,
        vars: ArrayLike,
        *,
        name: str = "",
    ) -> LdpcCode:
        """Build a code from edge lists: edge ``k`` joins ``checks[k]`` and ``vars[k]``.

        Duplicate edges are an error (over GF(2) they would cancel; a code file that has them
        is malformed). Edges may be given in any order.
        """
        c = np.asarray(checks, dtype=np.int64).ravel()
        v = np.asarray(vars, dtype=np.int64).ravel()
        n_vars = int(n_vars)
        n_checks = int(n_checks)
        if c.shape != v.shape:
            raise DataFormatError(f"checks ({c.size}) and vars ({v.size}) differ in length")
        if n_vars <= 0 or n_checks < 0:
            raise DataFormatError(f"bad code size n_vars={n_vars}, n_checks={n_checks}")
        if c.size and (c.min() < 0 or c.max() >= n_checks):
            raise DataFormatError(f"a check index is outside [0, {n_checks})")
        if v.size and (v.min() < 0 or v.max() >= n_vars):
            raise DataFormatError(f"a variable index is outside [0, {n_vars})")
        if n_vars >= 2**31 or n_checks >= 2**31:
            raise DataFormatError("code too large for int32 indices")
        key = c * n_vars + v
        order = np.argsort(key, kind="stable")
        key_sorted = key[order]
        if key_sorted.size > 1 and np.any(key_sorted[1:] == key_sorted[:-1]):
            raise DataFormatError("duplicate edge in the parity-check matrix")
        c_s = c[order]
        v_s = v[order]
        check_ptr = np.zeros(n_checks + 1, dtype=np.int64)
        check_ptr[1:] = np.cumsum(np.bincount(c_s, minlength=n_checks))
        # CSC: sort edges (in CSR order) by (var, check)
        csc_order = np.lexsort((c_s, v_s)).astype(np.int64)
        var_ptr = np.zeros(n_vars + 1, dtype=np.int64)
        var_ptr[1:] = np.cumsum(np.bincount(v_s, minlength=n_vars))
        return cls(
            n_vars=n_vars,
            n_checks=n_checks,
            check_ptr=_readonly(check_ptr),  # type: ignore[arg-type]
            check_vars=_readonly(v_s.astype(np.int32)),  # type: ignore[arg-type]
            var_ptr=_readonly(var_ptr),  # type: ignore[arg-type]
            var_checks=_readonly(c_s[csc_order].astype(np.int32)),  # type: ignore[arg-type]
            var_edges=_readonly(csc_order),  # type: ignore[arg-type]
            edge_checks=_readonly(c_s.astype(np.int32)),  # type: ignore[arg-type]
            name=name,
        )

    @classmethod
    def from_dense(cls, h: ArrayLike, *, name: str = "") -> LdpcCode:
        """Build a code from a dense 0/1 parity-check matrix ``H`` (``m × n``)."""
        a = np.asarray(h)
        if a.ndim != 2:
            raise DataFormatError(f"H must be 2-D, got shape {a.shape}")
        if np.any((a != 0) & (a != 1)):
            raise DataFormatError("H must contain only 0 and 1")
        rows, cols = np.nonzero(a)
        return cls.from_edges(a.shape[1], a.shape[0], rows, cols, name=name)

    # ------------------------------------------------------------------ alist I/O
    @classmethod
    def read_alist(cls, path: str | os.PathLike[str], *, name: str = "") -> LdpcCode:
        """Read a code in MacKay's alist format (1-based indices; zero padding allowed).

        Layout: ``n m`` / ``max_col_deg max_row_deg`` / ``n`` column degrees / ``m`` row
        degrees / ``n`` lines of check indices per variable / ``m`` lines of variable indices
        per check. The row lists must agree with the column lists.
        """
        p = Path(path)
        try:
            tokens = np.array(p.read_text(encoding="ascii").split(), dtype=np.int64)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{p}: not an alist file ({exc})") from None
        except OSError as exc:
            raise DataFormatError(f"{p}: cannot read the code file ({exc.strerror})") from None
        try:
            n, m, max_col, max_row = (int(t) for t in tokens[:4])
            pos = 4
            col_deg = tokens[pos : pos + n]
            pos += n
            row_deg = tokens[pos : pos + m]
            pos += m
            if col_deg.size != n or row_deg.size != m:
                raise DataFormatError(f"{p}: alist file truncated in the degree lists")
            if col_deg.sum() != row_deg.sum():
                raise DataFormatError(f"{p}: column and row degrees sum differently")
            rest = tokens[pos:]
            padded = rest.size >= n * max_col + m * max_row
            vars_list: list[int] = []
            checks_list: list[int] = []
            for v in range(n):
                width = max_col if padded else int(col_deg[v])
                entries = rest[:width]
                rest = rest[width:]
                nz = entries[entries != 0]
                if nz.size != col_deg[v]:
                    raise DataFormatError(f"{p}: variable {v + 1} lists {nz.size} checks")
                checks_list.extend((nz - 1).tolist())
                vars_list.extend([v] * int(nz.size))
            row_checks: list[int] = []
            row_vars: list[int] = []
            for c in range(m):
                width = max_row if padded else int(row_deg[c])
                entries = rest[:width]
                rest = rest[width:]
                nz = entries[entries != 0]
                if nz.size != row_deg[c]:
                    raise DataFormatError(f"{p}: check {c + 1} lists {nz.size} variables")
                row_vars.extend((nz - 1).tolist())
                row_checks.extend([c] * int(nz.size))
        except (ValueError, IndexError) as exc:
            raise DataFormatError(f"{p}: malformed alist file ({exc})") from None
        code = cls.from_edges(n, m, checks_list, vars_list, name=name or p.stem)
        by_rows = cls.from_edges(n, m, row_checks, row_vars)
        if not np.array_equal(code.check_vars, by_rows.check_vars) or not np.array_equal(
            code.check_ptr, by_rows.check_ptr
        ):
            raise DataFormatError(f"{p}: the row lists disagree with the column lists")
        return code

    def write_alist(self, path: str | os.PathLike[str]) -> None:
        """Write the code in alist format (1-based, zero-padded to the maximum degrees)."""
        col_deg = self.var_degrees
        row_deg = self.check_degrees
        max_col = int(col_deg.max()) if col_deg.size else 0
        max_row = int(row_deg.max()) if row_deg.size else 0
        lines = [
            f"{self.n_vars} {self.n_checks}",
            f"{max_col} {max_row}",
            " ".join(map(str, col_deg.tolist())),
            " ".join(map(str, row_deg.tolist())),
        ]
        for v in range(self.n_vars):
            cs = (self.var_checks[self.var_ptr[v] : self.var_ptr[v + 1]] + 1).tolist()
            cs += [0] * (max_col - len(cs))
            lines.append(" ".join(map(str, cs)))
        for c in range(self.n_checks):
            vs = (self.check_vars[self.check_ptr[c] : self.check_ptr[c + 1]] + 1).tolist()
            vs += [0] * (max_row - len(vs))
            lines.append(" ".join(map(str, vs)))
        Path(path).write_text("\n".join(lines) + "\n", encoding="ascii")


def random_regular(
    *, n_vars: int, var_degree: int, check_degree: int, rng: np.random.Generator
) -> LdpcCode:
    """A random ``(var_degree, check_degree)``-regular code by the configuration model.

    Sockets are matched by a random permutation; parallel edges (which would cancel over GF(2))
    are removed, so a few nodes may end up one degree short. Meant for tests and benchmarks
    (e.g. the (3,6) code of the decoder-speed table), not as a good code. ``n_vars`` must be a
    multiple of ``check_degree / gcd``; ``m = n_vars·var_degree / check_degree``.

    Example
    -------
    >>> code = random_regular(n_vars=12, var_degree=3, check_degree=6,
    ...                       rng=np.random.default_rng(1))
    >>> code.n_checks
    6
    """
    sockets = n_vars * var_degree
    if sockets % check_degree:
        raise DataFormatError("n_vars·var_degree must be a multiple of check_degree")
    n_checks = sockets // check_degree
    var_of_socket = np.repeat(np.arange(n_vars, dtype=np.int64), var_degree)
    check_of_socket = np.repeat(np.arange(n_checks, dtype=np.int64), check_degree)
    perm = rng.permutation(sockets)
    checks = check_of_socket[perm]
    key = checks * n_vars + var_of_socket
    _, first = np.unique(key, return_index=True)
    return LdpcCode.from_edges(
        n_vars,
        n_checks,
        checks[first],
        var_of_socket[first],
        name=f"regular-({var_degree},{check_degree})-n{n_vars}",
    )


def first_touch_order(code: LdpcCode) -> NDArray[np.int64]:
    """The variables in the order the checks first touch them: ``order[j]`` is the variable
    that gets label ``j`` when the checks are walked in index order (ties by index; variables
    in no check last).

    A decoder that walks the checks in index order and stores its per-variable arrays in this
    order reads them almost sequentially. For codes whose degree-one (extension) bits are
    numbered apart from their checks — the MET codes — that doubles the numba decoder's speed
    at n = 10^6 (met-r0.02: 79 → 147 Medges/s on 2 cores), with bit-identical results.

    >>> code = LdpcCode.from_dense(np.array([[0, 0, 1, 1], [1, 0, 0, 1]]))
    >>> first_touch_order(code).tolist()
    [2, 3, 0, 1]
    """
    first = np.full(code.n_vars, code.n_checks, dtype=np.int64)
    np.minimum.at(first, code.check_vars, code.edge_checks)
    return np.lexsort((np.arange(code.n_vars), first)).astype(np.int64)
