"""Fundamental limits: the PLOB bound of the pure-loss channel.

Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043 (2017), Eq. (19):
the secret-key capacity of a pure-loss channel of transmittance T is ``−log2(1 − T)`` bits per
channel use. Ideal reverse-reconciliation GG02 with homodyne detection reaches exactly half of it
as ``V_A → ∞`` (tested in tests/unit/test_keyrate_gaussian.py).

Example:
    >>> round(plob_bits_per_use(transmittance=0.1), 8)
    0.15200309
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cvqkd.units import FloatOrArray

__all__ = ["plob_bits_per_use"]


def plob_bits_per_use(*, transmittance: ArrayLike) -> FloatOrArray:
    """PLOB repeaterless bound ``−log2(1 − T)`` [bits per channel use], via ``log1p`` for small T.

    ``T = 1`` gives ``inf``. Vectorised.

    Example: ``plob_bits_per_use(transmittance=0.5) == 1.0``.
    """
    t = np.asarray(transmittance, dtype=float)
    with np.errstate(divide="ignore"):
        val = -np.log1p(-t) / np.log(2.0)
    return float(val) if val.ndim == 0 else val
