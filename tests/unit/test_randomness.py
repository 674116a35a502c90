"""Key-material randomness: the OS CSPRNG / insecure-test split, and who may draw from what.

Statistical checks use the deterministic test stream with fixed seeds, so they cannot flake;
their thresholds are the χ² 99.9 % quantiles, so a biased sampler (e.g. ``v % bound`` instead of
rejection) fails them while a correct one passes for these seeds.
"""

from __future__ import annotations

import ast
import threading
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import cvqkd
from cvqkd.randomness import OS_LABEL, SecretRandom

SRC = Path(cvqkd.__file__).parent


def test_os_stream_is_secure_labelled_and_fresh() -> None:
    a, b = SecretRandom(), SecretRandom()
    assert a.secure and a.label == OS_LABEL and a.seed is None
    # two 32-byte draws coincide with probability 2^-256
    assert a.bytes(32) != b.bytes(32)
    assert a.bytes(32) != a.bytes(32)
    assert a.bytes_drawn == 96


def test_insecure_stream_is_reproducible_and_labelled() -> None:
    a, b = SecretRandom.insecure_for_tests(5), SecretRandom.insecure_for_tests(5)
    assert not a.secure and a.seed == 5
    assert a.label.startswith("deterministic test randomness — NOT secure")
    assert a.bytes(40) == b.bytes(40)
    assert np.array_equal(a.bits((3, 7)), b.bits((3, 7)))
    assert a.below(2**127 - 1) == b.below(2**127 - 1)
    assert np.array_equal(a.integers(0, 6, size=50), b.integers(0, 6, size=50))
    assert SecretRandom.insecure_for_tests(6).bytes(40) != SecretRandom.insecure_for_tests(5).bytes(
        40
    )
    # domain separation: not the simulation stream of the same integer seed
    assert SecretRandom.insecure_for_tests(5).bytes(16) != np.random.default_rng(5).bytes(16)


def test_bits_are_the_bytes_unpacked() -> None:
    raw = SecretRandom.insecure_for_tests(1).bytes(3)
    bits = SecretRandom.insecure_for_tests(1).bits(20)
    assert bits.dtype == np.uint8
    assert np.array_equal(bits, np.unpackbits(np.frombuffer(raw, np.uint8))[:20])


@pytest.mark.parametrize("bound", [3, 6, 10, 200])
def test_below_is_uniform(bound: int) -> None:
    r = SecretRandom.insecure_for_tests(bound)
    draws = np.array([r.below(bound) for _ in range(200 * bound)])
    assert draws.min() >= 0 and draws.max() < bound
    chi2 = stats.chisquare(np.bincount(draws, minlength=bound)).statistic
    assert chi2 < stats.chi2.ppf(0.999, bound - 1)


def test_below_edges() -> None:
    r = SecretRandom.insecure_for_tests(0)
    assert r.below(1) == 0
    big = 2**127 - 1
    assert all(0 <= r.below(big) < big for _ in range(100))
    with pytest.raises(ValueError):
        r.below(0)


def test_integers_follow_numpy_generator_semantics() -> None:
    r = SecretRandom.insecure_for_tests(3)
    v = r.integers(0, 2, size=(4, 5), dtype=np.uint8)
    assert v.shape == (4, 5) and v.dtype == np.uint8 and set(np.unique(v)) <= {0, 1}
    w = r.integers(-3, 4, size=7000)
    assert w.dtype == np.int64 and w.min() == -3 and w.max() == 3
    chi2 = stats.chisquare(np.bincount(w + 3, minlength=7)).statistic
    assert chi2 < stats.chi2.ppf(0.999, 6)
    s = r.integers(0, 2**63 - 1)
    assert np.ndim(s) == 0 and 0 <= int(s) < 2**63 - 1
    assert r.integers(10, size=3).max() < 10  # one-argument form: [0, low)
    with pytest.raises(ValueError):
        r.integers(5, 5)


def test_as_generator_offers_only_integers_and_bytes() -> None:
    g = SecretRandom().as_generator()
    assert len(g.bytes(4)) == 4
    with pytest.raises(AttributeError):
        g.standard_normal(3)  # no silent fallback to PCG64


def test_spawn_streams() -> None:
    a, b = SecretRandom.insecure_for_tests(9), SecretRandom.insecure_for_tests(9)
    ca, cb = a.spawn(), b.spawn()
    assert not ca.secure and ca.bytes(16) == cb.bytes(16) != a.bytes(16)
    assert SecretRandom().spawn().secure


def test_concurrent_draws_are_all_counted() -> None:
    r = SecretRandom()

    def work() -> None:
        for _ in range(500):
            r.bytes(8)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.bytes_drawn == 4 * 500 * 8


def test_bob_reconcile_draws_its_key_bits_from_secret_random() -> None:
    from cvqkd.reconciliation.ldpc import random_regular
    from cvqkd.reconciliation.reconcile import bob_reconcile

    code = random_regular(n_vars=800, var_degree=3, check_degree=6, rng=np.random.default_rng(0))
    y = np.random.default_rng(1).standard_normal(1600)  # two frames
    runs = []
    for seed in (4, 4, 5):
        r = SecretRandom.insecure_for_tests(seed)
        bits, msg = bob_reconcile(y, layout=code, dimension=8, rng=r.as_generator())
        runs.append((bits, [t.seed for t in msg.tags]))
        # the key bits (1600) and the two tag seeds came out of r
        assert r.bytes_drawn >= 1600 // 8 + 2 * 8
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert not np.array_equal(runs[0][0], runs[2][0])
    os_bits = [bob_reconcile(y, layout=code, dimension=8, rng=SecretRandom().as_generator())[0]]
    os_bits.append(bob_reconcile(y, layout=code, dimension=8, rng=SecretRandom().as_generator())[0])
    assert not np.array_equal(*os_bits)


# ------------------------------------------------------------- who draws key material how

#: Functions of the key-material modules allowed to touch ``numpy.random``: the simulated
#: transmission (physics) and the construction of a *public* test code from its public seed.
ALLOWED = {
    "pipeline.py": {"layout_for", "simulate", "run_block"},
}
KEY_MODULES = ["pipeline.py", "privacy.py", "classical/auth.py", "classical/messages.py"]
KEY_MODULES += ["classical/transport.py", "classical/__init__.py", "cli/run.py"]
FORBIDDEN_ATTRS = {"default_rng", "Generator", "PCG64", "SeedSequence", "random", "urandom"}


def _random_uses(path: Path) -> list[tuple[str, int, str]]:
    """(enclosing function, line, what) for every numpy.random / random / rng use."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out: list[tuple[str, int, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        for child in ast.iter_child_nodes(node):
            name = func
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = child.name if func == "<module>" else func
            if isinstance(child, ast.Attribute) and child.attr in FORBIDDEN_ATTRS:
                out.append((name, child.lineno, child.attr))
            if isinstance(child, ast.Name) and child.id == "rng":
                out.append((name, child.lineno, "rng"))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in child.names] + [getattr(child, "module", None) or ""]
                if any(m in ("random", "secrets") or m.startswith("numpy.random") for m in mods):
                    out.append((name, child.lineno, "import"))
            visit(child, name)

    visit(tree, "<module>")
    return out


@pytest.mark.parametrize("rel", KEY_MODULES)
def test_key_material_modules_draw_no_simulation_randomness(rel: str) -> None:
    """pipeline / privacy / classical / cli.run: numpy.random only where the physics is."""
    allowed = ALLOWED.get(rel, set()) | ({"_party"} if rel == "cli/run.py" else set())
    bad = [u for u in _random_uses(SRC / rel) if u[0] not in allowed]
    assert bad == [], f"{rel}: randomness outside the simulation: {bad}"


def test_the_scan_finds_a_planted_violation(tmp_path: Path) -> None:
    p = tmp_path / "x.py"
    p.write_text(
        "import numpy as np\n"
        "def pads(n):\n"
        "    return np.random.default_rng().bytes(n)\n"
        "def bits(rng):\n"
        "    return rng.integers(0, 2, 8)\n",
        encoding="utf-8",
    )
    found = {(f, what) for f, _, what in _random_uses(p)}
    assert ("pads", "default_rng") in found and ("bits", "rng") in found
