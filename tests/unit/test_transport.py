"""The worker's Faust consumer runs on the worker's own loop, hands each fetched message to the stream
without a task per message, and still lets a rebalance interrupt a delivery that blocks, as Faust's own
drain loop does."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from mode.threads import ServiceThread

from hookstream.settings import Settings
from hookstream.topics import Topics
from processor.app import create_app
from processor.metrics import ProcessorMetrics
from processor.pipeline import Pipeline
from processor.route import Routes


@pytest.fixture
async def consumer(tmp_path: Path) -> Any:
    """The worker's consumer, made inside the running loop (Faust binds its services to the loop)."""
    settings = Settings(cache_dir=tmp_path)
    app: faust.App = create_app(settings, Pipeline(settings, ProcessorMetrics(), Routes(Topics())))
    return app.consumer


def test_faust_still_delivers_each_message_through_wait_first_with_the_flow_event() -> None:
    """What the cheaper hand-over relies on; a Faust upgrade that changes the drain loop fails here."""
    source = " ".join(inspect.getsource(FaustConsumer._drain_messages).split())
    assert "await self.wait_first( callback(message), self.suspend_flow.wait() )" in source


async def test_a_delivery_that_never_suspends_completes_inline(consumer: Any) -> None:
    delivered_in: list[asyncio.Task[Any] | None] = []

    async def deliver() -> str:
        delivered_in.append(asyncio.current_task())
        return "done"

    results = await consumer.wait_first(deliver(), asyncio.Event().wait())
    assert delivered_in == [asyncio.current_task()]  # Faust's own wait_first runs it in a new task
    assert results.results == ["done"]
    assert not results.stopped


async def test_a_delivery_that_suspends_resumes_when_what_it_waits_for_is_done(consumer: Any) -> None:
    room = asyncio.get_running_loop().create_future()

    async def deliver() -> str:
        await room  # a full buffer
        return "delivered"

    waiting = asyncio.create_task(consumer.wait_first(deliver(), asyncio.Event().wait()))
    await asyncio.sleep(0)
    assert not waiting.done()
    room.set_result(None)
    assert (await waiting).results == ["delivered"]


async def test_a_rebalance_interrupts_a_delivery_that_blocks(consumer: Any) -> None:
    flow_suspended = asyncio.Event()
    outcome: list[str] = []

    async def deliver() -> None:
        try:
            await asyncio.Event().wait()  # flow control: blocked until the rebalance is over
            outcome.append("delivered")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    waiting = asyncio.create_task(consumer.wait_first(deliver(), flow_suspended.wait()))
    await asyncio.sleep(0)
    flow_suspended.set()
    results = await waiting
    assert results.results == [True]  # the flow event won
    await asyncio.sleep(0)
    assert outcome == ["cancelled"]


def test_faust_still_serves_a_consumer_thread_as_the_same_loop_version_does() -> None:
    """What running Faust's consumer "thread" on the worker's loop relies on: the thread's `_serve`
    starts the service and stops it through `_shutdown_thread`; every consumer call goes through
    `call_thread`. A Faust or mode upgrade that changes these fails here."""
    serve = " ".join(inspect.getsource(ServiceThread._serve).split())
    assert "await self._default_start() " in serve
    assert "await self._shutdown_thread()" in serve
    fetch = inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread.getmany)
    assert "self.call_thread(" in fetch


async def test_the_consumer_runs_on_the_workers_own_loop_and_calls_it_inline(consumer: Any) -> None:
    thread = consumer._thread
    assert thread.thread_loop is asyncio.get_running_loop()
    called_in: list[asyncio.Task[Any] | None] = []

    async def call(value: str) -> str:
        called_in.append(asyncio.current_task())
        return value

    assert await thread.call_thread(call, "fetched") == "fetched"
    assert called_in == [asyncio.current_task()]  # no method queue, no other loop, no other task
