"""Key-rate engine: GG02 (asymptotic, finite-size, composable), discrete modulation, DV/MDI, PLOB.

Modules: :mod:`gaussian` (GG02 asymptotic), :mod:`bounds` (PLOB), :mod:`optimise` (optimal
modulation variance), :mod:`finite_size` (Leverrier–Grosshans–Grangier 2010),
:mod:`composable` (Mountogiannakis et al. 2022), :mod:`discrete` (Denys–Brown–Leverrier 2021),
:mod:`dv` (decoy-state BB84, MDI-QKD).
"""

from __future__ import annotations

from cvqkd.keyrate.gaussian import GG02Rate, gg02, holevo_bits, mutual_information_bits

__all__ = ["GG02Rate", "gg02", "holevo_bits", "mutual_information_bits"]
