"""Tests for the LdpcCode container: CSR/CSC consistency, syndromes, alist round trip."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.errors import DataFormatError
from cvqkd.reconciliation.ldpc import LdpcCode


def _random_h(rng: np.random.Generator, m: int, n: int, p: float) -> np.ndarray:
    return (rng.random((m, n)) < p).astype(np.uint8)


@pytest.mark.parametrize("seed", range(5))
def test_structures_match_dense(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h = _random_h(rng, 13, 29, 0.2)
    h[3] = 0  # an empty check row must be handled
    code = LdpcCode.from_dense(h)
    assert np.array_equal(code.to_dense(), h)
    assert code.n_edges == int(h.sum())
    assert code.check_ptr.dtype == np.int64 and code.check_vars.dtype == np.int32
    # CSC walks the same edges: var_edges maps CSC positions to CSR edges
    assert np.array_equal(np.sort(code.var_edges), np.arange(code.n_edges))
    assert np.array_equal(
        code.check_vars[code.var_edges], np.repeat(np.arange(29), h.sum(0).astype(np.int64))
    )
    assert np.array_equal(code.edge_checks[code.var_edges], code.var_checks)
    assert np.array_equal(code.var_degrees, h.sum(0))
    assert np.array_equal(code.check_degrees, h.sum(1))
    assert code.rate == pytest.approx(1 - 13 / 29)


@pytest.mark.parametrize("seed", range(5))
def test_syndrome_equals_matrix_product(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    h = _random_h(rng, 20, 50, 0.15)
    h[0] = 0
    code = LdpcCode.from_dense(h)
    x = rng.integers(0, 2, size=(7, 50), dtype=np.uint8)
    expected = (x.astype(np.int64) @ h.T.astype(np.int64)) % 2
    assert np.array_equal(code.syndrome(x), expected)
    assert np.array_equal(code.syndrome(x[2]), expected[2])


def test_from_edges_any_order_and_duplicates() -> None:
    code = LdpcCode.from_edges(4, 2, [1, 0, 1, 0, 1, 0], [3, 3, 2, 1, 1, 0])
    assert code.to_dense().tolist() == [[1, 1, 0, 1], [0, 1, 1, 1]]
    with pytest.raises(DataFormatError, match="duplicate"):
        LdpcCode.from_edges(4, 2, [0, 0], [1, 1])
    with pytest.raises(DataFormatError, match="outside"):
        LdpcCode.from_edges(4, 2, [2], [1])


def test_alist_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    h = _random_h(rng, 11, 23, 0.25)
    code = LdpcCode.from_dense(h)
    path = tmp_path / "c.alist"
    code.write_alist(path)
    back = LdpcCode.read_alist(path)
    assert np.array_equal(back.to_dense(), h)


def test_alist_known_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # (7,4) Hamming code written by hand in alist format (unpadded variant).
    text = """7 3
2 4
1 1 2 2 2 1 3
4 4 4
1
2
1 3
1 3
2 3
2
1 2 3
1 3 4 7
2 5 6 7
3 4 5 7
"""
    path = tmp_path / "hamming.alist"
    path.write_text(text)
    code = LdpcCode.read_alist(path)
    expected = np.array(
        [[1, 0, 1, 1, 0, 0, 1], [0, 1, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0, 1]], dtype=np.uint8
    )
    assert np.array_equal(code.to_dense(), expected)
    bad = tmp_path / "bad.alist"
    bad.write_text(text.replace("3 4 5 7", "3 4 6 7"))
    with pytest.raises(DataFormatError):
        LdpcCode.read_alist(bad)
