"""The ``cvqkd`` command line: parse → config model → library call → table or ``--json``.

One module per sub-command (or group of sub-commands); each exposes ``register(app)``.
``main.py`` builds the application and maps every :class:`cvqkd.errors.CvqkdError` to one
clear line on stderr and a non-zero exit code.
"""
