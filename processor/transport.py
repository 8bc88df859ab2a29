"""Faust's aiokafka transport with its consumer on the worker's own event loop (not a thread of its own), a
short consumer fetch wait, the one setting Faust does not expose, a fetch minimum that follows the rate
(processor/fetch_gathering.py), a cheaper hand-over of each fetched message to the stream, and the
credentials Faust's clients log in with.

Faust hard-codes `fetch_max_wait_ms=1500` (faust/transport/drivers/aiokafka.py). aiokafka keeps one fetch
in flight per broker and leaves out of it the partitions that still hold fetched records; so a fetch
sent while the busy partitions were full asks only for idle ones (the other raw topics), the broker holds
it for the whole wait, and the busy partitions' records pile up meanwhile. Measured at 1,000 events/s:
stage one stalled for 1-1.5 s every few seconds (e2e p50 100-1,400 ms); with the wait at
`FETCH_MAX_WAIT_MS` the stall is bounded by it (e2e p50 35 ms).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.services import WaitArgT, WaitResults
from mode.utils.futures import maybe_async

from hookstream.kafka import FETCH_MAX_WAIT_MS
from hookstream.settings import Settings
from processor.fetch_gathering import FetchGathering


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer "thread", run on the worker's own event loop instead of a thread.

    Faust runs its consumer in a thread of its own with its own event loop and hands every call across
    (`call_thread`: a method queue, a future, a wake-up of the other loop), so every fetch, commit and
    position costs two thread switches and the GIL changes hands between the two loops. Nothing here
    blocks the loop long (a batch is at most `BATCH_MAX` records; the dedup stage's aiokafka consumer
    shares this loop the same way), so aiokafka's heartbeats keep their time on one loop as they do in
    any aiokafka application. Measured back to back: 18-19% less CPU per record under either guarantee
    (221 against 270 µs at_least_once, 239 against 294 µs exactly_once); at 1,000 events/s the worker
    had woken its other loop ~1,300 times a second. Faust's rebalance callbacks still go through its
    main-loop method queue, as before."""

    def __init__(self, consumer: Any, *, loop: Any, **kwargs: Any) -> None:
        super().__init__(consumer, loop=loop, thread_loop=loop, **kwargs)

    async def start(self) -> None:
        """`ServiceThread.start` would start a thread running `_serve`: start here instead (less the
        thread's method queue, which `call_thread` no longer uses)."""
        self._thread_started.set()
        await self._default_start()

    async def stop(self) -> None:
        """What `ServiceThread.stop` and its thread's `_serve` do, on this loop: stop the aiokafka
        consumer, the children and the tasks."""
        if self._started.is_set() and not self._stopped.is_set():
            self._stopped.set()
            await self.on_stop()
            await self._shutdown_thread()
            await self.on_shutdown()

    async def call_thread(self, fun: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
        return await maybe_async(fun(*args, **kwargs))

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the consumer starts its fetcher
        self._gathering = FetchGathering(consumer, time.monotonic())
        return consumer

    async def getmany(self, active_partitions: set[Any] | None, timeout: float) -> Any:  # noqa: ASYNC109 - Faust's signature
        """Faust's fetch, counted for the fetch minimum."""
        polled = await super().getmany(active_partitions, timeout)
        self._gathering.read(polled, time.monotonic())
        return polled


class WorkerConsumer(faust_aiokafka.Consumer):
    # Set by the normalize agent (processor/app.py): hands over the events it took and still holds.
    hand_over_taken: Callable[[], Awaitable[None]] | None = None

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_empty(self) -> None:
        """Faust waits here, once it has cleared the streams' queues (a stop, a rebalance), for every
        event a stream took to be acked. No event will come now to complete the batch the agent holds,
        so it is handed over first (and acked once Kafka has what it became)."""
        if self.hand_over_taken is not None:
            await self.hand_over_taken()
        await super().wait_empty()

    async def wait_first(self, *coros: WaitArgT, timeout: Any = None) -> WaitResults:  # noqa: ASYNC109 - Faust's signature
        """Faust's drain loop (`Consumer._drain_messages`, its only caller on a consumer) hands every
        message to the stream as `wait_first(callback(message), suspend_flow.wait())`: four new tasks and
        an `asyncio.wait` per message, so that a rebalance can interrupt a delivery that blocks (flow
        control, a full buffer). Almost every delivery completes without ever suspending: run its first
        step here, and race only what does suspend, exactly as Faust would. Measured: the drain loop was
        ~10% of the worker's CPU at full speed, most of it in `wait_first`."""
        if timeout is not None or len(coros) != 2 or not all(inspect.iscoroutine(c) for c in coros):
            return await super().wait_first(*coros, timeout=timeout)
        delivery, interruption = coros
        assert inspect.iscoroutine(delivery)
        assert inspect.iscoroutine(interruption)
        try:
            pending = delivery.send(None)
        except StopIteration as done:
            interruption.close()
            return WaitResults([delivery], [done.value], False)
        return await super().wait_first(_Resumed(delivery, pending), interruption)


class Transport(faust_aiokafka.Transport):
    Consumer = WorkerConsumer


def broker_credentials(settings: Settings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust's `broker_credentials` for the security settings, the same ones `hookstream.clients` gives
    aiokafka. Faust hands them to its consumer, producer and topic admin alike
    (`credentials_to_aiokafka_auth`). SASL over TLS needs the context inside the SASL credentials: without
    one Faust silently means SASL_PLAINTEXT. TLS alone gets our context (Faust's `SSLCredentials(cafile=...)`
    cannot build one: it passes `purpose=None` to `ssl.create_default_context`)."""
    security = settings.kafka_security
    if security.uses_sasl:
        assert security.sasl_password is not None  # KafkaSecurity.checked() saw to it
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=security.sasl_password.reveal(),
            mechanism=security.sasl_mechanism,
            ssl_context=security.ssl_context(),
        )
    context = security.ssl_context()
    return None if context is None else faust.SSLCredentials(context)


class _Resumed:
    """The rest of a coroutine that already ran up to its first suspension (which yielded `pending`):
    awaiting this continues it as its task would have, passing each suspension up and each resumption,
    cancellation included, down."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, None, Any]:
        coro, pending = self._coro, self._pending
        while True:
            thrown: BaseException | None = None
            try:
                yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # a cancellation, above all: it goes on into the coroutine
                thrown = exc
            try:
                pending = coro.send(None) if thrown is None else coro.throw(thrown)
            except StopIteration as done:
                return done.value
