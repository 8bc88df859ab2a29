"""A broker connection that uvloop has closed, written to before aiokafka noticed, fails as a connection
error (which aiokafka's clients retry), not as the RuntimeError uvloop raises (aio-libs/aiokafka#1038):
that one crashed a worker in the broker fault drill when a broker of three was killed."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.metadata import MetadataRequest

from hookstream import clients
from hookstream.settings import Settings


def test_a_write_to_a_connection_uvloop_closed_is_a_kafka_connection_error(bootstrap: str) -> None:
    settings = Settings(kafka_bootstrap=bootstrap)
    host, _, port = settings.bootstrap_servers[0].rpartition(":")

    async def write_after_close() -> None:
        conn = await create_conn(host, int(port))
        assert (await conn.send(MetadataRequest([]))).brokers, "the connection works before it is closed"
        conn._writer.transport.close()  # what uvloop does when the broker goes away
        await asyncio.sleep(0)  # uvloop closes the handle now; aiokafka's reader sees it after this task
        with pytest.raises(KafkaConnectionError):
            await conn.send(MetadataRequest([]))
        assert not conn.connected(), "closed, so that the client makes a new one"

    with asyncio.Runner(loop_factory=clients.event_loop_factory(settings)) as runner:
        assert "uvloop" in type(runner.get_loop()).__module__
        runner.run(write_after_close())
