"""The processor's one way of writing outside a transaction: record batches per topic partition. Checked
on the broker against what aiokafka's own per-record `send` does with the same keys."""

from __future__ import annotations

from hookstream import clients
from hookstream.kafka import DurableProducer, ensure_topics, topic_spec
from hookstream.settings import Settings
from processor.outputs import Output, send_all
from tests.integration.harness import read_all


async def test_batched_outputs_land_where_send_would_put_them_in_order_and_whole(
    bootstrap: str, namespace: str
) -> None:
    settings = Settings(kafka_bootstrap=bootstrap, namespace=namespace)
    batched, probed = f"{namespace}.batched", f"{namespace}.probed"
    await ensure_topics(settings, [topic_spec(settings, batched), topic_spec(settings, probed)])
    keys = [f"subject/{n}".encode() for n in range(50)]
    outputs = [
        Output(batched, keys[n % 50], f"{n:06d}".encode() * 170, (("n", str(n).encode()),))
        for n in range(3000)
    ]
    outputs.append(Output(batched, b"subject/big", b"x" * 100_000))  # larger than a whole batch
    outputs.append(Output(batched, None, b"no key", partition=4))
    # Small batches, so that one partition's outputs take several of them.
    producer = DurableProducer(settings, role="test", linger_ms=0, max_batch_size=16 * 1024)
    await producer.start()
    try:
        await send_all(producer, outputs)
    finally:
        await producer.stop()
    reference = clients.producer(settings)
    await reference.start()
    try:
        expected = {key: (await reference.send_and_wait(probed, b"", key=key)).partition for key in keys}
    finally:
        await reference.stop()

    records = await read_all(bootstrap, batched)
    assert len(records) == len(outputs)
    by_key: dict[bytes | None, list[int]] = {}
    for record in records:
        if record.key in expected:
            assert record.partition == expected[record.key], "not where aiokafka's send puts this key"
        by_key.setdefault(record.key, []).append(int(dict(record.headers).get("n", b"-1")))
    assert all(ns == sorted(ns) and len(ns) == 60 for key, ns in by_key.items() if key in expected)
    assert [r.partition for r in records if r.key is None] == [4]
    assert [len(r.value) for r in records if r.key == b"subject/big"] == [100_000]
