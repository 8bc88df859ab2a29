"""Faults on purpose, on the real broker: killed and rescaled workers, a broker outage, poison records,
hostile clients and a stalled worker. Nothing a receiver acknowledged may be lost; under exactly_once
nothing may be published twice. Each test prints what was sent, acknowledged, published and doubled."""

from __future__ import annotations

import asyncio
import itertools
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import aiohttp
import orjson
import pytest

from hookstream.topics import Topics
from tests.integration.harness import (
    Service,
    Stack,
    caught_up,
    eventually,
    metric,
    produce,
    raw_headers,
    read_all,
)
from tests.support import FORUM_TOKEN, forum_event, run_cli, x_signature

RATE_PER_S = 250
pytestmark = pytest.mark.long(240)


class Sender:
    """Posts distinct forum events at a steady rate and remembers what each answer was: `total` of them,
    and more until `until` is set, if given (load that lasts as long as the test needs it)."""

    def __init__(
        self, url: str, total: int, rate: float = RATE_PER_S, until: asyncio.Event | None = None
    ) -> None:
        self.url, self.total, self.rate, self.until = url, total, rate, until
        self.acked: set[int] = set()
        self.answers: list[tuple[float, int]] = []  # (monotonic time of the answer, status)

    async def run(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            pending: set[asyncio.Task[None]] = set()
            started = time.monotonic()
            for n in itertools.count():
                if n >= self.total and (self.until is None or self.until.is_set()):
                    self.total = n
                    break
                await asyncio.sleep(max(0.0, started + n / self.rate - time.monotonic()))  # pacing, not sync
                task = asyncio.create_task(self._post(session, n))
                pending.add(task)
                task.add_done_callback(pending.discard)
            await asyncio.gather(*pending)

    async def _post(self, session: aiohttp.ClientSession, n: int) -> None:
        try:
            async with session.post(self.url, data=forum_event(n, user_id=n)) as response:
                status = response.status
        except aiohttp.ClientError:
            status = 0
        self.answers.append((time.monotonic(), status))
        if status == 200:
            self.acked.add(n)


async def published_ids(bootstrap: str, namespace: str) -> Counter[int]:
    async def settled() -> bool:
        topics = Topics(namespace)
        return await caught_up(bootstrap, namespace, topics.raw("websitetoolbox")) and await caught_up(
            bootstrap, f"{namespace}-dedup", topics.keyed
        )

    await eventually(settled, timeout=120, what="both stages to commit everything")
    records = await read_all(bootstrap, Topics(namespace).events)
    return Counter(int(orjson.loads(r.value)["id"].split(":")[1]) for r in records)


def report(fault: str, sender: Sender, published: Counter[int]) -> None:
    doubled = sum(count - 1 for count in published.values() if count > 1)
    print(
        f"\n[{fault}] sent {sender.total}, acknowledged {len(sender.acked)}, "
        f"published {len(published)} distinct, lost {len(sender.acked - set(published))}, doubled {doubled}"
    )


async def when(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    await eventually(condition, timeout=90, what=what)


@pytest.mark.parametrize("guarantee", ["exactly_once", "at_least_once"])
async def test_workers_killed_with_sigkill_again_and_again_lose_nothing(
    stack: Stack, bootstrap: str, namespace: str, guarantee: str
) -> None:
    stack.env.update(
        {"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN, "HOOKSTREAM_PROCESSING_GUARANTEE": guarantee}
    )
    receivers = await stack.receivers()
    worker = await stack.worker()
    sender = Sender(f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}", total=4000)
    sending = asyncio.create_task(sender.run())
    for _ in range(3):
        current = worker

        async def busy(w: Service = current) -> bool:
            return await metric(w, "hookstream_events_published_total") >= 200

        await when(busy, "the worker to publish 200 events")
        current.stop(signal.SIGKILL)
        worker = await stack.worker()
    await sending
    published = await published_ids(bootstrap, namespace)
    report(f"SIGKILL x3, {guarantee}", sender, published)
    assert len(sender.acked) == sender.total
    assert sender.acked <= set(published), "every acknowledged event is published"
    if guarantee == "exactly_once":
        assert max(published.values()) == 1, "read_committed: not one event twice"


async def test_scaling_out_and_in_under_load_loses_and_doubles_nothing(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.env["HOOKSTREAM_WEBSITETOOLBOX_TOKEN"] = FORUM_TOKEN
    receivers = await stack.receivers()
    first = await stack.worker()
    scaled_in = asyncio.Event()  # a fast worker can finish a fixed load before a second one has joined
    sender = Sender(f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}", total=4000, until=scaled_in)
    sending = asyncio.create_task(sender.run())

    async def started() -> bool:  # early: the second worker must join while the load still comes
        return len(sender.acked) >= 300

    await when(started, "the first 300 deliveries")
    second = await stack.worker()

    async def both_busy() -> bool:
        return await metric(second, "hookstream_raw_records_total") > 0

    await when(both_busy, "the second worker to take partitions")
    assert await first.stopped(signal.SIGTERM) == 0
    scaled_in.set()
    await sending
    published = await published_ids(bootstrap, namespace)
    report("scale 1 -> 2 -> 1, at_least_once", sender, published)
    assert sender.acked == set(published)
    assert max(published.values()) == 1


async def test_a_20s_broker_outage_under_load_is_503s_then_recovery_with_nothing_lost(
    stack: Stack, namespace: str, own_broker: dict[str, str]
) -> None:
    bootstrap = own_broker["HOOKSTREAM_KAFKA_BOOTSTRAP"]
    stack.bootstrap = bootstrap
    stack.env.update({"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN, "HOOKSTREAM_ACK_TIMEOUT_MS": "1000"})
    receivers = await stack.receivers()
    worker = await stack.worker()
    back = asyncio.Event()  # a broker slow to restart on a busy machine must not outlast a fixed load
    sender = Sender(f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}", total=2500, rate=50, until=back)
    sending = asyncio.create_task(sender.run())

    async def warmed() -> bool:
        return len(sender.acked) >= 100

    await when(warmed, "100 acknowledged deliveries")
    await asyncio.to_thread(run_cli, "kafka", "stop", env=own_broker)
    down_from = time.monotonic()
    await asyncio.sleep(20)  # the outage under test
    down_until = time.monotonic()
    assert (await asyncio.to_thread(run_cli, "kafka", "start", env=own_broker)).returncode == 0

    async def accepting_again() -> bool:
        return any(status == 200 and at > down_until for at, status in sender.answers)

    await when(accepting_again, "the receivers to accept deliveries again")
    back.set()
    await sending

    during = [status for at, status in sender.answers if down_from + 1.5 < at < down_until]
    assert during, "requests kept coming while the broker was down"
    assert 200 not in during, "never a 2xx while Kafka cannot have the bytes"
    assert set(during) == {503}
    recovered = [at for at, status in sender.answers if status == 200 and at > down_until]
    assert recovered, "the receivers accepted deliveries again"
    print(f"\n[broker down 20 s] first 2xx {min(recovered) - down_until:.1f} s after the broker was back")
    published = await published_ids(bootstrap, namespace)
    report("broker down 20 s", sender, published)
    assert sender.acked <= set(published)
    assert worker.process.poll() is None, "the worker resumed without a restart"
    assert receivers.process.poll() is None, "the receivers recovered without a restart"


async def test_poison_records_are_dead_letters_and_the_partition_keeps_moving(
    stack: Stack, bootstrap: str, namespace: str
) -> None:
    stack.create_topics()
    topics = Topics(namespace)
    rng = random.Random(5)
    poison: list[tuple[str, bytes, dict[str, bytes], int | None]] = []
    for n in range(200):
        headers = rng.choice(
            [
                {},
                raw_headers("websitetoolbox"),
                {"hs-source": rng.randbytes(8)},
                {"hs-received-at": b"\xff" * 40},
            ]
        )
        poison.append(
            (
                topics.raw(rng.choice(["x", "hootsuite", "websitetoolbox", "standard"])),
                rng.randbytes(n * 7),
                headers,
                0,
            )
        )
    poison.append((topics.raw("websitetoolbox"), forum_event(77), raw_headers("websitetoolbox"), 0))
    await produce(bootstrap, poison)
    worker = await stack.worker()

    async def through() -> bool:
        return await metric(worker, "hookstream_events_published_total") == 1

    await when(through, "the valid event behind 200 poison records")
    assert len(await read_all(bootstrap, topics.dlq)) == 200
    assert worker.process.poll() is None


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def test_hostile_clients_do_not_stop_good_deliveries_or_grow_memory(
    stack: Stack, namespace: str
) -> None:
    stack.env.update(
        {"HOOKSTREAM_WEBSITETOOLBOX_TOKEN": FORUM_TOKEN, "HOOKSTREAM_X_CONSUMER_SECRETS": "x-secret"}
    )
    receivers = await stack.receivers()
    host, port = "127.0.0.1", receivers.port
    good_url = f"{receivers.url}/webhooks/websitetoolbox/{FORUM_TOKEN}"
    async with aiohttp.ClientSession() as session:
        async with session.post(good_url, data=forum_event(0)) as response:
            assert response.status == 200
        before = rss_kb(receivers.process.pid)

        slow = [await asyncio.open_connection(host, port) for _ in range(300)]
        for _, writer in slow:  # slowloris: a request line, then nothing
            writer.write(b"POST /webhooks/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n")
        cut = []
        for _ in range(100):  # bodies cut off mid-stream
            _, writer = await asyncio.open_connection(host, port)
            writer.write(
                b"POST /webhooks/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"{" * 500
            )
            cut.append(writer)
        for writer in cut:
            writer.close()

        async def bad(n: int) -> int:
            body = forum_event(n, user_id=n)
            headers = {"x-twitter-webhooks-signature": x_signature("not-the-secret", body)}
            async with session.post(f"{receivers.url}/webhooks/x", data=body, headers=headers) as response:
                return response.status

        async def huge(n: int) -> int:
            async with session.post(good_url, data=b"{}", headers={"X-Junk": "j" * 200_000}) as response:
                return response.status

        async def good(n: int) -> int:
            async with session.post(good_url, data=forum_event(n, user_id=n)) as response:
                return response.status

        statuses: Counter[tuple[str, int]] = Counter()
        for batch in range(20):
            results = await asyncio.gather(
                *(bad(n) for n in range(100)),
                *(huge(n) for n in range(5)),
                *(good(batch * 10 + n) for n in range(1, 11)),
            )
            for kind, status in zip(["bad"] * 100 + ["huge"] * 5 + ["good"] * 10, results, strict=True):
                statuses[(kind, status)] += 1
        after = rss_kb(receivers.process.pid)
        for _, writer in slow:
            writer.close()
    print(f"\n[hostile clients] answers {dict(statuses)}; RSS {before} kB -> {after} kB")
    assert statuses[("good", 200)] == 200, "every good delivery was accepted"
    assert statuses[("bad", 401)] == 2000
    assert {status for (kind, status) in statuses if kind == "huge"} <= {400, 431}
    assert after - before < 64 * 1024, "memory stays bounded"
    assert await metric(receivers, "hookstream_rejections_total", reason="bad_signature") == 2000


async def test_a_stalled_worker_says_so_on_livez(stack: Stack, bootstrap: str, namespace: str) -> None:
    stack.create_topics()
    stack.env.update({"HOOKSTREAM_STALL_TIMEOUT": "3s", "HOOKSTREAM_REPLICATION_FACTOR": "2"})
    worker = await stack.worker()
    await worker.wait_http("/livez", status=200)
    # Its output topic cannot be created (two replicas on a one-broker cluster): lag without progress.
    await produce(
        bootstrap,
        [(Topics(namespace).raw("websitetoolbox"), forum_event(1), raw_headers("websitetoolbox"), None)],
    )
    await worker.wait_http("/livez", status=503, timeout=60)
    assert worker.process.poll() is None
