"""The coexistence link: fibre, WDM plan, and the noise each classical channel puts into the
quantum channel's LO mode (Raman, FWM, crosstalk, ASE), phase noise, and the assembled
:class:`~cvqkd.link.budget.NoiseBudget`."""

from cvqkd.link.budget import SOURCE_NAMES, NoiseBudget, noise_budget
from cvqkd.link.fibre import Fibre
from cvqkd.link.raman import RamanModel
from cvqkd.link.wdm import ClassicalChannel, WdmPlan, band_comb, channel_comb

__all__ = [
    "SOURCE_NAMES",
    "ClassicalChannel",
    "Fibre",
    "NoiseBudget",
    "RamanModel",
    "WdmPlan",
    "band_comb",
    "channel_comb",
    "noise_budget",
]
