"""Using the keys: encrypted transport with key refresh and the QKD + ML-KEM hybrid.

Modules:

- :mod:`cvqkd.apps.hybrid`     HKDF-SHA-256 combiner of a QKD key, an ML-KEM-768 secret and
                               optionally an X25519 secret
- :mod:`cvqkd.apps.handshake`  signed handshake (SAE certificates) and the QKD transcript HMAC
- :mod:`cvqkd.apps.keysource`  where keys come from (ETSI GS QKD 014 KME, or in memory)
- :mod:`cvqkd.apps.policy`     what to do when the KME runs dry (wait, keep, pqc-only)
- :mod:`cvqkd.apps.transport`  the AES-256-GCM record stream with in-band key IDs and rekeying
- :mod:`cvqkd.apps.refresh`    can a link's key rate refresh X Gbit/s every T seconds?

The record format and the security argument are in docs/apps.md.
"""
