"""The one exception tree of cvqkd.

::

    CvqkdError                     anything cvqkd raises on purpose
    ├── ConfigError                a scenario file, flag or request is wrong (user input)
    ├── DataFormatError            a dataset or code file is malformed
    ├── SecurityAbort              a block must not produce key (gate failed, key length <= 0)
    ├── AuthenticationError        a classical message failed its MAC, was replayed or reordered
    ├── KeyStoreError              the key store cannot do what was asked
    │   └── KeyNotFoundError       a key ID is unknown to the store
    └── MissingExtraError          an optional extra ([gpu], [postgres], [dask]) is not installed

Normal outcomes are values, not exceptions (a failed decode is ``converged=False``). The CLI
maps every ``CvqkdError`` to one clear line and a non-zero exit code; the library never prints.
"""

from __future__ import annotations


class CvqkdError(Exception):
    """Base class for every error cvqkd raises on purpose."""

    exit_code: int = 1


class ConfigError(CvqkdError, ValueError):
    """User input (scenario file, CLI flag, request) is wrong; the message names what."""

    exit_code = 2


class DataFormatError(CvqkdError, ValueError):
    """A dataset, code file or message is malformed; the message names what is wrong."""

    exit_code = 2


class SecurityAbort(CvqkdError):
    """A block must not produce key: an estimation gate failed or the key length is <= 0."""

    exit_code = 3


class AuthenticationError(CvqkdError):
    """A classical-channel message failed authentication, or was replayed or reordered."""

    exit_code = 4


class KeyStoreError(CvqkdError):
    """The key store cannot do what was asked (pool empty, limits, database error)."""


class KeyNotFoundError(KeyStoreError, KeyError):
    """A key ID is not known to the store (or not issued for the asking party)."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "key not found"


class MissingExtraError(CvqkdError, ImportError):
    """An optional dependency is missing; the message gives the install command."""

    exit_code = 2

    @classmethod
    def for_extra(cls, extra: str, package: str) -> MissingExtraError:
        """Build the error with the install hint for ``extra`` (e.g. ``gpu``)."""
        return cls(f"this needs the optional package {package!r}: pip install 'cvqkd[{extra}]'")
