"""The authenticated classical channel between Alice and Bob.

- :mod:`cvqkd.classical.messages`: framing (JSON header + binary blobs; no pickle).
- :mod:`cvqkd.classical.auth`: Wegman–Carter MAC over GF(2^127 − 1), pre-shared key pools,
  sequence numbers (:class:`~cvqkd.classical.auth.AuthenticatedChannel`).
- :mod:`cvqkd.classical.transport`: in-process queues and TCP with length-prefixed frames.
"""

from cvqkd.classical.auth import AuthenticatedChannel, KeyPool, PresharedKey
from cvqkd.classical.transport import InProcessTransport, TcpTransport, TransportError

__all__ = [
    "AuthenticatedChannel",
    "InProcessTransport",
    "KeyPool",
    "PresharedKey",
    "TcpTransport",
    "TransportError",
]
