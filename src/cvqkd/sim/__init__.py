"""Simulated CV-QKD transmission: modulation, channel, detection, phase recovery, session.

The in-memory entry points are :func:`simulate_block` and :func:`simulate_stream`; the data come
as :class:`cvqkd.dataset.TransmissionBlock` (the same container measured data are read into).
"""

from cvqkd.sim.channel import ChannelParameters
from cvqkd.sim.modulation import MODULATIONS, Constellation, constellation, draw_symbols
from cvqkd.sim.session import SessionSettings, simulate_block, simulate_stream

__all__ = [
    "MODULATIONS",
    "ChannelParameters",
    "Constellation",
    "SessionSettings",
    "constellation",
    "draw_symbols",
    "simulate_block",
    "simulate_stream",
]
