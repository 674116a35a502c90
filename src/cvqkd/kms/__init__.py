"""Key management: the key store and the ETSI GS QKD 014 key delivery API (see docs/kme.md).

For the pipeline (which fills the store of both KMEs with the same blocks)::

    from cvqkd.kms import LinkId, open_store
    store = open_store("kme_a.sqlite")              # or "postgresql://..."
    store.add_keys(LinkId("KME_A", "KME_B"), [(block_uuid, key_bytes), ...])

For applications (SAEs): :class:`cvqkd.kms.client.Etsi014Client`.
"""

from cvqkd.kms.store import DeliveredKey, KeyStore, LinkId, StoreMetrics, open_store

__all__ = ["DeliveredKey", "KeyStore", "LinkId", "StoreMetrics", "open_store"]
