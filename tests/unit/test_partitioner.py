"""Our murmur2 places every key where Kafka's partitioner (aiokafka's, the Java clients') places it."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner, murmur2
from hypothesis import given
from hypothesis import strategies as st

from hookstream.partitioner import murmur2 as fast_murmur2
from hookstream.partitioner import partition_for


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=10_000))
def test_a_key_hashes_and_lands_as_kafkas_partitioner_places_it(key: bytes, partitions: int) -> None:
    every = list(range(partitions))
    assert fast_murmur2(key) == murmur2(key)
    assert partition_for(key, partitions) == DefaultPartitioner()(key, every, every)


def test_known_hashes_from_kafkas_own_tests() -> None:
    """org.apache.kafka.common.utils.UtilsTest#testMurmur2 (as signed 32-bit integers there)."""
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536}
    for key, signed in cases.items():
        assert fast_murmur2(key) == signed & 0xFFFFFFFF
