"""Kafka's default partitioner for keyed records: murmur2 of the key, positive, modulo the partition count,
as the Java clients (and aiokafka's `DefaultPartitioner`) place them, so that every event about one subject
lands on the same partition whoever wrote it.

aiokafka's murmur2 reads the key a byte at a time in pure Python; reading it four bytes at a time with
`struct` gives the same hash in half the time (about 6 against 11 µs for a 34-byte key). A worker places
two records an event by key, so that was ~5% of its CPU; the receivers place Standard Webhooks'
deliveries (keyed by message id) the same way.
"""

from __future__ import annotations

import struct

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(key: bytes) -> int:
    """MurmurHash2 of `key` as Kafka computes it (org.apache.kafka.common.utils.Utils.murmur2), unsigned."""
    length = len(key)
    h = _SEED ^ length
    whole = length & ~3
    for (k,) in struct.iter_unpack("<I", key[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    rest = length & 3
    if rest:
        if rest == 3:
            h ^= key[whole + 2] << 16
        if rest >= 2:
            h ^= key[whole + 1] << 8
        h = ((h ^ key[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions` (numbered 0..n-1)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
