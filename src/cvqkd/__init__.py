"""cvqkd: continuous-variable QKD over fibre shared with classical WDM traffic.

The data flow, and so the package layout (see docs/architecture.md):

    scenario -> link (NoiseBudget) -> keyrate / plan
    sim (or measured data) -> estimation -> reconciliation -> privacy -> kms -> apps
"""

__version__ = "0.1.0"
