"""Information reconciliation: multidimensional mapping, LDPC codes, syndrome decoding.

Modules: ``ldpc`` (the :class:`~cvqkd.reconciliation.ldpc.LdpcCode` container), ``mdr``
(multidimensional reconciliation, d = 1, 2, 4, 8), ``decoder`` (syndrome belief propagation with
reference / numba / CUDA backends), ``verification`` (universal-hash frame check), ``reconcile``
(Bob's and Alice's per-block steps), ``fer`` (Monte-Carlo frame-error-rate harness), and the code
family (``design``, ``construction``, ``codes``). Import the sub-modules directly; this package
imports nothing heavy.
"""
